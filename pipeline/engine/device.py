"""Which device and precision a pass runs on: one rule for `auto`, one message when CUDA is missing.

The local cluster, `weft stylize` and every task resolve the device here, so "auto" means
the same thing everywhere and a missing GPU is reported in the same words.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from pipeline.errors import WeftError

#: Said when CUDA was asked for and torch sees none.
NO_CUDA = "--device cuda was asked for, but torch sees no CUDA GPU on this machine"


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU in this process."""
    return torch.cuda.is_available()


def pick_device(device: str = "auto", hint: str = "") -> str:
    """'auto' -> 'cuda' when this process sees a GPU, else 'cpu'; 'cuda' without one is a clear error.

    ``hint`` is added to the error (what the user can do instead, from where it was asked).
    """
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available():
        raise WeftError(f"{NO_CUDA}{f' ({hint})' if hint else ''}")
    return device


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a clear error.

    On CUDA, deterministic algorithms are switched on (same seed, same GPU: same bytes).
    """
    device = pick_device(device)
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS determinism
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return torch.device(device)


def effective_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 where the hardware does it fast (CUDA, or a CPU with AVX-512 BF16/AMX), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device) -> Iterator[None]:
    """Autocast the network to bf16 when asked; TF32 matmuls on CUDA. Losses stay float32 (see losses)."""
    mode = effective_precision(precision, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if mode == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
