"""What a validated manifest is: the public dataclasses and the manifest-wide constants.

Everything downstream of the manifest (plan, run, store, deliverables) reads these types and
nothing else, so they live apart from the code that builds them: a reader of a :class:`JobSpec`
never imports the parsers. The names of the fields a manifest may use are here too, next to
the types they fill, so the docs, the key checks and the CSV columns share one list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.manifest.images import DEFAULT_MAX_INPUT_PIXELS
from pipeline.repeat.cloth_crop import ClothCrop
from pipeline.repeat.extract import TileFinding
from pipeline.repeat.lattice import Repeat
from pipeline.settings import SETTING_NAMES, Settings

#: Keys of a job besides settings overrides (``profile``: the profile this job's settings stand on).
JOB_FIELDS: tuple[str, ...] = (
    "id", "design", "style", "repeat", "drop", "size", "size_cm", "dpi", "seed", "profile",
    "screen_circumference_cm", "fabric_width_cm", "colourways", "mask", "regions", "variants",
)  # fmt: skip
#: Job keys that only make sense per job, so ``[defaults]`` refuses them.
PER_JOB_FIELDS: frozenset[str] = frozenset({"id", "design", "style", "colourways", "mask", "regions", "variants"})
#: ``regions`` value that leaves a region as the design has it (content only, no style).
KEEP = "keep"
#: Most distinct labels (colours) a mask file may have: more is a photo or a JPEG, not a label image.
MAX_MASK_LABELS = 32
#: Most jobs one job's ``variants`` may expand into.
MAX_VARIANTS = 64
STYLE_FIELDS: tuple[str, ...] = ("id", "path", "license", "attribution", "notes")
BLEND_FIELDS: tuple[str, ...] = ("style", "weight")
TOP_LEVEL_FIELDS: tuple[str, ...] = (
    "profile", "catalogue", "defaults", "limits", "policy", "training_designs", "styles", "jobs",
)  # fmt: skip

DEFAULT_REPEAT = Repeat.BLOCK
DEFAULT_SEED = 0
MAX_SEED = 2**63 - 1
MAX_DPI = 10_000
#: A CSV catalogue takes its styles (and defaults, limits, policy, profile) from this file beside it.
CSV_STYLES_FILE = "styles.toml"
#: Every key a job (a ``[[jobs]]`` entry or a CSV column) may have.
_JOB_KEYS: frozenset[str] = frozenset(JOB_FIELDS) | SETTING_NAMES
#: Every key ``[defaults]`` may have.
_DEFAULT_KEYS: frozenset[str] = (frozenset(JOB_FIELDS) - PER_JOB_FIELDS) | SETTING_NAMES


@dataclass(frozen=True)
class StyleRef:
    """A declared style image with the licence facts a print house will ask for."""

    id: str
    path: Path
    license: str
    attribution: str
    notes: str = ""


@dataclass(frozen=True)
class StyleUse:
    """One style of a job's blend; the weights of a job sum to 1."""

    style: StyleRef
    weight: float


@dataclass(frozen=True)
class Colourway:
    """A named recolouring of a job's separation: one ``#rrggbb`` per separated colour, in palette order."""

    name: str
    colors: tuple[str, ...]


COLOURWAY_FIELDS: tuple[str, ...] = ("name", "colors")


@dataclass(frozen=True)
class RegionSpec:
    """One region of a job's mask: its label, its colour in a mask file (None: automatic mask), its blend.

    ``uses`` empty means ``keep``: the design's own look there, no style.
    """

    label: str
    colour: tuple[int, int, int] | None
    uses: tuple[StyleUse, ...]

    def record(self, style_index: dict[str, int]) -> list[Any]:
        """[label, "keep" | [[index of the style in the job's styles, weight], ...]] for keys and provenance."""
        return [self.label, KEEP if not self.uses else [[style_index[u.style.id], round(u.weight, 12)] for u in self.uses]]


@dataclass(frozen=True)
class JobSpec:
    """Everything one job needs, validated: nothing downstream re-reads the manifest."""

    id: str
    design: Path
    styles: tuple[StyleUse, ...]
    repeat: Repeat
    width: int
    height: int
    dpi: int
    seed: int
    settings: Settings
    entry: dict[str, Any]  # the job's entry as written (JSON-safe), for provenance
    source: str  # "manifests/demo.toml" or "manifests/jobs.csv row 7"
    tile: TileFinding | ClothCrop | None = None  # what crop_to_repeat cut from a photographed design
    colourways: tuple[Colourway, ...] = ()
    mask: Path | str | None = None  # a label image, "auto", or None (one style everywhere)
    regions: tuple[RegionSpec, ...] = ()  # by mask label; ``styles`` is then every style they use, each once
    variant_of: str | None = None  # the job id as written, when this job is one of its ``variants``
    variant: tuple[tuple[str, Any], ...] = ()  # what this variant sets ((name, value), ...)

    def region_blends(self) -> tuple[tuple[tuple[int, float], ...], ...]:
        """Per region: (index into ``styles``, weight) of its blend; empty for keep."""
        index = {use.style.id: i for i, use in enumerate(self.styles)}
        return tuple(tuple((index[u.style.id], u.weight) for u in region.uses) for region in self.regions)


@dataclass(frozen=True)
class Limits:
    """Sanity bounds from the manifest's ``[limits]`` table (absurd sizes are usually typos)."""

    max_output_pixels: int = 400_000_000
    max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS
    min_output_side: int = 32
    max_aspect_ratio: float = 16.0


@dataclass(frozen=True)
class Policy:
    """The manifest's ``[policy]`` table: which style licences its jobs may use.

    ``allowed_licenses`` is matched against a style's ``license`` as a whole, ignoring case
    (``None``: any licence). Every style needs an attribution whatever the policy says, so
    ``require_attribution`` is always true; the table may state it, not switch it off.
    """

    allowed_licenses: tuple[str, ...] | None = None
    require_attribution: bool = True

    def allows(self, license_: str) -> bool:
        """Whether a style with this licence may be used (case-insensitive, whole value)."""
        if self.allowed_licenses is None:
            return True
        return license_.casefold() in {name.casefold() for name in self.allowed_licenses}

    def record(self) -> dict[str, Any]:
        """The policy as JSON data, for a job's provenance and the files exported from it."""
        allowed = None if self.allowed_licenses is None else list(self.allowed_licenses)
        return {"allowed_licenses": allowed, "require_attribution": self.require_attribution, "match": "ignore case"}


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. ``limits.max_input_pixels`` is what the pipeline passes to ``load_rgb``.

    ``policy`` is ``None`` when the manifest has no ``[policy]`` table.
    """

    path: Path
    root: Path
    styles: dict[str, StyleRef]
    jobs: tuple[JobSpec, ...]
    limits: Limits = Limits()
    policy: Policy | None = None
    training_designs: tuple[Path, ...] = ()  # extra images feed-forward trainings use (manifest/training.py)
