"""``training_designs``: a folder of extra images a house style's network is trained on.

The feed-forward engine trains on the designs of the jobs that use a style, and on these:
every image file directly in the folder, in name order (their hashes enter the model's key,
so adding an image retrains the models that use it). A folder that is missing, or holds no
image, is an error that names the manifest and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.manifest.context import _Context
from pipeline.manifest.problems import _BAD, _Where

#: File endings taken from a ``training_designs`` folder.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})


def read_training_designs(ctx: _Context, where: _Where, value: Any) -> tuple[Path, ...]:
    """The image files of the ``training_designs`` folder (none when the key is absent)."""
    if value is None:
        return ()
    folder = where.read("training_designs", lambda v: ctx.path(v, ctx.root), value)
    if folder is _BAD:
        return ()
    if not folder.is_dir():
        where.error("training_designs", f"'{value}' is not a folder ({folder})")
        return ()
    images = tuple(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not images:
        endings = ", ".join(sorted(IMAGE_SUFFIXES))
        where.error("training_designs", f"the folder {folder} holds no image ({endings})")
        return ()
    for path in images:
        ctx.image(where, "training_designs", str(path.relative_to(ctx.root)) if path.is_relative_to(ctx.root)
                  else str(path), ctx.root, need_size=False)  # fmt: skip
    return images
