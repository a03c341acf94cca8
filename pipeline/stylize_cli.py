"""``weft stylize``: one design, one or more styles, one seamless PNG; no Dask, no zarr.

For quick looks and benchmarks. It runs exactly the engine the pipeline's coarse pass runs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pipeline.errors import ConfigError, WeftError
from pipeline.repeat.lattice import as_repeat, check_size, honoured_size
from pipeline.manifest.images import load_rgb
from pipeline.deliver.preview import parse_grid, repeat_preview
from pipeline.settings import describe_validation_error, load_profile, resolve_settings


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
) -> None:
    """Load, stylize with a progress bar, write OUTPUT (and the RxC preview), print a summary."""
    import torch
    from pydantic import ValidationError

    from pipeline.repeat.seams import repeat_seam_ratio
    from pipeline.engine.device import effective_precision, resolve_device
    from pipeline.engine.whole import prepare_design, stylize_image

    repeat_type = as_repeat(repeat)
    grid = parse_grid(preview) if preview is not None else None
    try:
        settings = resolve_settings(load_profile(profile, config), {"iterations": iterations, "scales": scales})
    except ValidationError as error:
        details = "; ".join(f"{field}: {message}" for field, message in describe_validation_error(error))
        raise ConfigError(f"invalid settings: {details}") from None
    design_rgb = prepare_design(load_rgb(design), repeat_type, settings)
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

        def on_scale(index: int, count: int, hw: tuple[int, int]) -> None:
            total = settings.iterations if index == 0 else settings.refine_iterations
            progress.reset(task, total=total, description=f"scale {index + 1}/{count} {hw[1]}x{hw[0]}", losses="")

        def on_step(step: int, total: int, losses: dict[str, float]) -> None:
            text = f"content {losses['content']:.3g} style {losses['style']:.3g}"
            progress.update(task, completed=step, losses=text)

        with torch.inference_mode(False):
            result = stylize_image(
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


def _save_png(rgb: np.ndarray, path: Path) -> None:
    try:
        Image.fromarray(rgb).save(path, format="PNG")
    except OSError as error:
        raise WeftError(f"{path}: cannot write: {error}") from None
