"""How the store lays out one scale of a job: plain geometry the plan and the store agree on.

Kept apart from :mod:`pipeline.run.store` so that planning (which knows the manifest) never
imports zarr, and the store never imports the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.repeat.tiles import ChunkCount


@dataclass(frozen=True)
class LevelLayout(ChunkCount):
    """Geometry of one scale of a job: its stitched image, chunk grid and tile windows.

    ``core`` is the chunk (tile core) size; a tile window is the core plus ``overlap`` on every
    side. ``origin`` is the plane coordinate of the image's pixel (0, 0) (grids may be shifted
    between passes). ``tiled=False`` for whole-image (coarse) levels: they have no tile arrays.
    """

    index: int
    height: int
    width: int
    core: int
    overlap: int = 0
    origin: tuple[int, int] = (0, 0)
    tiled: bool = True

    def __post_init__(self) -> None:
        if self.index < 0 or self.height < 1 or self.width < 1 or self.core < 1 or self.overlap < 0:
            raise ValueError(f"invalid level layout {self}")


    @property
    def window(self) -> int:
        """Side of a tile window: core plus overlap on both sides."""
        return self.core + 2 * self.overlap

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["origin"] = list(self.origin)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LevelLayout:
        fields = {k: data[k] for k in ("index", "height", "width", "core", "overlap", "tiled")}
        return cls(origin=(int(data["origin"][0]), int(data["origin"][1])), **fields)
