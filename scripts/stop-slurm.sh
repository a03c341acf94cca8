#!/usr/bin/env bash
# Stops the one-node SLURM that scripts/start-slurm.sh started: slurmd, slurmctld, munged,
# each by the pid in its pid file (TERM, then KILL after 10 s). Queued and running jobs are
# lost with the controller's state only if you also remove /var/spool/slurmctld.
set -uo pipefail

stop() {
  local name=$1 pidfile=$2 pid
  if ! [ -s "$pidfile" ] || ! pid=$(cat "$pidfile") || ! kill -0 "$pid" 2>/dev/null; then
    echo "stop-slurm: $name is not running"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { echo "stop-slurm: stopped $name (pid $pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  echo "stop-slurm: killed $name (pid $pid): it did not stop in 10 s"
}

stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop munged /run/munge/munged.pid
