"""``weft stylize``: one design, one or more styles, one seamless PNG; no Dask, no zarr.

For quick looks and benchmarks. It runs exactly the engine the pipeline's coarse pass runs, or
with ``--engine feedforward --model`` a trained house-style network, as ``weft run`` does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipeline.errors import ConfigError, WeftError
from pipeline.repeat.lattice import Repeat, as_repeat, check_size, honoured_size
from pipeline.manifest.images import load_rgb
from pipeline.deliver.preview import parse_grid, repeat_preview
from pipeline.settings import Settings, describe_validation_error, load_profile, resolve_settings


def parse_size(text: str | None, design_hw: tuple[int, int]) -> tuple[int, int]:
    """'W' (long side, aspect from the design) or 'WxH' -> (width, height)."""
    h, w = design_hw
    if text is None:
        return w, h
    try:
        if "x" in text.lower():
            width, height = (int(part) for part in text.lower().split("x", 1))
        else:
            long_side = int(text)
            scale = long_side / max(w, h)
            width, height = max(1, round(w * scale)), max(1, round(h * scale))
    except ValueError:
        raise WeftError(f"--size {text!r}: expected W or WxH in pixels, e.g. 512 or 768x512") from None
    if width < 16 or height < 16:
        raise WeftError(f"--size {text!r}: at least 16 x 16 pixels are needed")
    return width, height


def _fit_repeat(repeat: str, width: int, height: int, explicit: bool) -> tuple[int, int]:
    """Round a derived size to honour the repeat; an explicit WxH that cannot is an error."""
    if explicit:
        check_size(repeat, width, height)
        return width, height
    return honoured_size(repeat, width, height)


def stylize_command(
    *,
    design: Path,
    styles: Sequence[Path],
    output: Path,
    size: str | None,
    repeat: str,
    profile: str | None,
    config: Path | None,
    iterations: int | None,
    scales: int | None,
    seed: int,
    device: str,
    preview: str | None,
    console: Console,
    engine: str | None = None,
    model: Path | None = None,
) -> None:
    """Load, stylize with a progress bar, write OUTPUT (and the RxC preview), print a summary."""
    from pydantic import ValidationError

    from pipeline.repeat.seams import repeat_seam_ratio
    from pipeline.engine.device import effective_precision, resolve_device

    repeat_type = as_repeat(repeat)
    grid = parse_grid(preview) if preview is not None else None
    try:
        overrides = {"iterations": iterations, "scales": scales, "engine": engine}
        settings = resolve_settings(load_profile(profile, config), overrides)
    except ValidationError as error:
        details = "; ".join(f"{field}: {message}" for field, message in describe_validation_error(error))
        raise ConfigError(f"invalid settings: {details}") from None
    design_rgb = _design_for_stylize(load_rgb(design), repeat_type, settings, console)
    style_rgbs = [(load_rgb(path), 1.0) for path in styles]
    width, height = parse_size(size, design_rgb.shape[:2])
    width, height = _fit_repeat(repeat_type.value, width, height, explicit=size is not None and "x" in size.lower())
    torch_device = resolve_device(device)
    output.parent.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[losses]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("scale", total=1, losses="")
        if settings.engine == "feedforward":
            result = _feedforward(design_rgb, repeat_type, (height, width), settings, torch_device, model, progress, task)
        else:
            result = _optimise(design_rgb, style_rgbs, repeat_type, (height, width), settings, seed, torch_device,
                               progress, task)  # fmt: skip
    seconds = time.perf_counter() - started
    _save_png(result, output)
    console.print(
        f"wrote [bold]{output}[/] {width}x{height} {repeat_type.value} in {seconds:.1f} s on {torch_device} "
        f"({effective_precision(settings.precision, torch_device)}); "
        f"repeat seam ratio {repeat_seam_ratio(result, repeat_type):.3f}",
        highlight=False,
    )
    if grid is not None:
        preview_path = output.with_name(f"{output.stem}.repeat-{grid[0]}x{grid[1]}{output.suffix}")
        _save_png(repeat_preview(result, repeat_type, *grid), preview_path)
        console.print(f"wrote [bold]{preview_path}[/] ({grid[0]} x {grid[1]} repeat preview)", highlight=False)


def _optimise(
    design_rgb: np.ndarray, style_rgbs: list[tuple[np.ndarray, float]], repeat_type: Repeat, size: tuple[int, int],
    settings: Settings, seed: int, torch_device: Any, progress: Progress, task: Any,
) -> np.ndarray:  # fmt: skip
    """The optimisation engine, coarse to fine, with a bar per scale."""
    import torch

    from pipeline.engine.whole import stylize_image

    height, width = size
    torch.set_num_threads(settings.coarse_threads)  # as the pipeline's whole-image task: the same bytes

    def on_scale(index: int, count: int, hw: tuple[int, int]) -> None:
        total = settings.iterations if index == 0 else settings.refine_iterations
        progress.reset(task, total=total, description=f"scale {index + 1}/{count} {hw[1]}x{hw[0]}", losses="")

    def on_step(step: int, total: int, losses: dict[str, float]) -> None:
        text = f"content {losses['content']:.3g} style {losses['style']:.3g}"
        progress.update(task, completed=step, losses=text)

    with torch.inference_mode(False):
        return stylize_image(
            design_rgb,
            style_rgbs,
            repeat=repeat_type,
            width=width,
            height=height,
            settings=settings,
            seed=seed,
            device=torch_device,
            callback=on_step,
            scale_callback=on_scale,
        )


def _feedforward(
    design_rgb: np.ndarray, repeat_type: Repeat, size: tuple[int, int], settings: Settings, torch_device: Any,
    model: Path | None, progress: Progress, task: Any,
) -> np.ndarray:  # fmt: skip
    """The feed-forward engine: the trained network tile by tile, then the exact size."""
    from pipeline.engine.feedforward import stylize_tiled
    from pipeline.engine.schedule import feedforward_size
    from pipeline.repeat.resample import resize_uint8

    if model is None:
        raise WeftError("--engine feedforward needs --model: a trained model (`weft train`), e.g. STORE/models/ID")
    net = load_model_path(model, torch_device)
    h, w = feedforward_size(size[1], size[0], repeat_type)

    def on_tile(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total, description=f"feed-forward {w}x{h} tiles")

    result = stylize_tiled(net, design_rgb, repeat_type, (h, w), settings, torch_device, settings.ff_tile_size, on_tile)
    return result if (h, w) == size else resize_uint8(result, repeat_type, size)


def load_model_path(model: Path, device: Any) -> Any:
    """A model from a store's model folder (checked against its model.json) or a bare .safetensors file."""
    from pipeline.engine.model_files import load_model
    from pipeline.run.models import MODEL_FILE, MODEL_RECORD, read_json

    folder, path = (model, model / MODEL_FILE) if model.is_dir() else (model.parent, model)
    record = read_json(folder / MODEL_RECORD) if path.name == MODEL_FILE else None
    return load_model(path, record.get("sha256") if record else None, device)


def _save_png(rgb: np.ndarray, path: Path) -> None:
    try:
        Image.fromarray(rgb).save(path, format="PNG")
    except OSError as error:
        raise WeftError(f"{path}: cannot write: {error}") from None


def _design_for_stylize(design: Any, repeat: Any, settings: Any, console: Console) -> Any:
    """``crop_to_repeat`` as a manifest job would apply it; the repeat given on the command line is kept."""
    from pipeline.engine.whole import prepare_design
    from pipeline.repeat.tile_choice import choose_tile

    choice = choose_tile(design, settings.crop_to_repeat, repeat)
    if choice.error:
        raise WeftError(f"crop_to_repeat: {choice.error}")
    if choice.warning:
        console.print(f"[yellow]crop_to_repeat:[/] {escape(choice.warning)}", highlight=False)
    tile = choice.finding.recipe if choice.finding is not None else None
    return prepare_design(design, repeat, settings, tile=tile)
