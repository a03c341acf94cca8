#!/usr/bin/env bash
# A one-node SLURM on this machine, for trying weft's batch paths and for CI (tests/test_slurm.py).
#
#   sudo scripts/start-slurm.sh      # installs, configures and starts munged, slurmctld, slurmd
#   sinfo                            # localhost ... idle
#   scripts/stop-slurm.sh            # stops the three daemons again
#
# What it does, each step only when needed (running it twice is fine):
#   1. installs Debian's slurmctld slurmd slurm-client munge (apt-get update first);
#   2. writes /etc/slurm/slurm.conf: one node "localhost" (127.0.0.1) with this machine's
#      CPUs and memory (as `slurmd -C` sees them), one partition "debug", no accounting, no
#      cgroups (proctrack/linuxproc, task/none), select/cons_tres;
#   3. creates the munge key and the spool, state, log and run folders, owned by slurm/munge;
#   4. starts munged, slurmctld and `slurmd -N localhost` (they fork by themselves; no systemd);
#   5. waits (at most SLURM_WAIT_S seconds, default 60) until `sinfo` shows the node idle.
#
# No GPUs are declared: a gres.conf "Name=gpu" entry is only accepted with a File=/dev/nvidia*
# device, so on a machine without one leave GPU requests (--gres) out of the jobs.
# Everything stays on loopback: the controller and the node are both 127.0.0.1.
# Exit status: 0 when the node is idle, 1 otherwise (the reason is printed).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
PARTITION=${SLURM_PARTITION:-debug}
WAIT_S=${SLURM_WAIT_S:-60}
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
LOGS=/var/log/slurm
RUN=/run/slurm

say() { echo "start-slurm: $*"; }
# is the daemon whose pid file this is alive?
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
fail() { echo "start-slurm: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts daemons)"

# 1. packages
missing=()
for pair in slurmctld:slurmctld slurmd:slurmd sinfo:slurm-client munged:munge; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -qq || fail "apt-get update failed"
  timeout 600 apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
    || fail "apt-get install slurmctld slurmd slurm-client munge failed"
else
  say "packages already installed"
fi
PATH=/usr/sbin:/sbin:$PATH
id slurm >/dev/null 2>&1 || fail "the package did not create the user 'slurm'"
id munge >/dev/null 2>&1 || fail "the package did not create the user 'munge'"

# 2. slurm.conf for this machine (rewritten only when the machine's figures change)
read -r CPUS SOCKETS CORES THREADS MEMORY < <(
  slurmd -C | head -1 | tr ' ' '\n' | awk -F= '
    $1=="CPUs"{c=$2} $1=="SocketsPerBoard"{s=$2} $1=="CoresPerSocket"{k=$2}
    $1=="ThreadsPerCore"{t=$2} $1=="RealMemory"{m=$2} END{print c, s, k, t, m}'
)
[ -n "${MEMORY:-}" ] || fail "slurmd -C did not report this machine's CPUs and memory"
MEMORY=$((MEMORY - MEMORY / 20)) # leave 5% to the system, or slurmd may find less and drain the node
mkdir -p "$CONF_DIR"
new_conf=$(cat <<EOF
# Written by weft's scripts/start-slurm.sh: a one-node SLURM on this machine.
ClusterName=weft-local
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# seconds between a job's SIGTERM (scancel, walltime) and its SIGKILL
KillWait=30
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=$MEMORY State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new_conf" ]; then
  say "$CONF is up to date (CPUs=$CPUS RealMemory=$MEMORY)"
else
  printf '%s\n' "$new_conf" >"$CONF"
  say "wrote $CONF (node localhost: CPUs=$CPUS RealMemory=$MEMORY MB, partition $PARTITION)"
  # a running controller must read the new file
  for pidfile in "$RUN/slurmd.pid" "$RUN/slurmctld.pid"; do
    if running "$pidfile"; then
      say "stopping $(basename "$pidfile" .pid) to start it with the new configuration"
      kill "$(cat "$pidfile")" || true
      for _ in $(seq 20); do running "$pidfile" || break; sleep 0.5; done
    fi
  done
fi

# 3. munge key; folders owned by their daemons
if [ ! -s /etc/munge/munge.key ]; then
  say "creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then
    mungekey --create --force --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0700 /var/lib/munge /var/log/munge
mkdir -p "$STATE" "$SPOOL" "$LOGS" "$RUN"
chown slurm:slurm "$STATE" "$LOGS" "$RUN"
chmod 0755 "$STATE" "$SPOOL" "$LOGS" "$RUN"

# 4. daemons (each forks into the background by itself)
if running /run/munge/munged.pid; then
  say "munged already running"
else
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged || fail "munged did not start (see /var/log/munge/munged.log)"
fi
munge -n | unmunge >/dev/null || fail "munge cannot encode/decode a credential"
if running "$RUN/slurmctld.pid"; then
  say "slurmctld already running"
else
  say "starting slurmctld"
  slurmctld || fail "slurmctld did not start (see $LOGS/slurmctld.log)"
fi
if running "$RUN/slurmd.pid"; then
  say "slurmd already running"
else
  say "starting slurmd"
  slurmd -N localhost || fail "slurmd did not start (see $LOGS/slurmd.log)"
fi

# 5. wait for the node
deadline=$((SECONDS + WAIT_S))
state=""
while [ $SECONDS -lt $deadline ]; do
  state=$(timeout 10 sinfo -h -n localhost -o %T 2>/dev/null | head -1 || true)
  case "$state" in
  idle | mixed | allocated) break ;;
  down* | drain*)
    # e.g. after a restart: the node was marked down; it is back, so resume it
    timeout 10 scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
case "$state" in
idle | mixed | allocated) say "node localhost is $state after $((SECONDS))s: sinfo, sbatch, squeue are ready" ;;
*)
  reason=$(timeout 10 sinfo -h -n localhost -o %E 2>/dev/null || true)
  fail "node localhost is '${state:-unknown}' after ${WAIT_S}s${reason:+ ($reason)}; see $LOGS/slurmctld.log and $LOGS/slurmd.log"
  ;;
esac
