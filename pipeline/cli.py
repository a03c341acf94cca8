"""The ``weft`` command: parses options, calls one function of the library, prints the result.

No logic lives here beyond turning options into arguments; each command's work is in its
own module so it can be tested and reused without the CLI. Heavy imports (torch, dask, zarr)
happen inside the commands so ``weft --help`` stays instant.

Exit codes: 0 all good, 1 some job failed or the input is invalid, 2 usage error.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from pipeline.console import LogConsole
from pipeline.conventions import ALLOW_OUTSIDE_ROOT, CLUSTER_KINDS, DEVICES, ENGINES, EXPORT_FORMATS
from pipeline.errors import GeometryError, WeftError
from pipeline.repeat.lattice import Repeat, as_repeat

app = typer.Typer(
    name="weft",
    help="Seamless, print-ready, style-transferred textile repeat tiles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = LogConsole(stderr=True)  # without a terminal (a log file) nothing is cut to 80 columns
out = LogConsole()


def _choices(name: str, values: Iterable[str]) -> Any:
    """A str Enum of ``values`` for Typer's choices; the values come from where the rule lives."""
    return Enum(name, {value: value for value in values}, type=str)


def _repeat(value: str | Repeat) -> Repeat:
    """A repeat name from the command line: block, half-drop, brick, mirror, drop-1/3, brick-2/5 ..."""
    try:
        return as_repeat(value)
    except GeometryError as error:
        raise typer.BadParameter(str(error)) from None


RepeatOpt = Repeat
DeviceOpt = _choices("DeviceOpt", DEVICES)
ClusterOpt = _choices("ClusterOpt", CLUSTER_KINDS)
FormatOpt = _choices("FormatOpt", EXPORT_FORMATS)
EngineOpt = _choices("EngineOpt", ENGINES)


ManifestArg = Annotated[Path, typer.Argument(help="Manifest file (.toml) or CSV catalogue export (.csv).")]
StoreOpt = Annotated[Path, typer.Option("--store", "-s", help="zarr store to write results into.")]
ProfileOpt = Annotated[
    Optional[str], typer.Option("--profile", "-p", help="Settings profile from configs/ (default, preview, print, demo).")
]
ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="Settings file (TOML) to use instead of a named profile.")
]
SchedulerAddressOpt = Annotated[
    Optional[str], typer.Option("--scheduler-address", help="Connect to a running Dask scheduler (tcp://host:8786).")
]
SchedulerFileOpt = Annotated[
    Optional[Path], typer.Option("--scheduler-file", help="Connect via the JSON file a `dask scheduler` wrote.")
]
ClusterKindOpt = Annotated[
    ClusterOpt,
    typer.Option("--cluster", help="Start a cluster: local (embedded), slurm or pbs (dask-jobqueue, configs/cluster/)."),
]
WorkersOpt = Annotated[
    Optional[int], typer.Option("--workers", "-w", min=1, help="Worker processes (local) or jobs (slurm/pbs).")
]
DeviceOptT = Annotated[
    DeviceOpt, typer.Option("--device", help="Where the network runs: auto picks CUDA when a GPU is present.")
]
WorkerTimeoutOpt = Annotated[
    Optional[float],
    typer.Option(
        "--worker-timeout", min=1,
        help="Seconds to wait for a first worker (batch jobs queued, a scheduler without workers) before "
        "giving up; default $WEFT_WORKER_TIMEOUT or 300.",
    ),
]  # fmt: skip
OnlyOpt = Annotated[
    Optional[list[str]], typer.Option("--only", help="Run only this job id (repeatable).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Recompute jobs even when the store holds them finished.")]
LogJsonOpt = Annotated[
    Optional[Path], typer.Option("--log-json", help="Also append the run's events to FILE as JSON lines (monitoring).")
]
AllowOutsideOpt = Annotated[
    bool,
    typer.Option(
        "--allow-outside-root/--no-allow-outside-root",
        help="Allow manifest paths that point outside the manifest's folder.",
    ),
]


def _fail(error: WeftError) -> None:
    console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
    raise typer.Exit(1)


@app.command()
def run(
    manifest: ManifestArg,
    store: StoreOpt = Path("weft-out/catalogue.zarr"),
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    scheduler_address: SchedulerAddressOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    cluster: ClusterKindOpt = ClusterOpt["local"],
    workers: WorkersOpt = None,
    device: DeviceOptT = DeviceOpt["auto"],
    worker_timeout: WorkerTimeoutOpt = None,
    only: OnlyOpt = None,
    force: ForceOpt = False,
    allow_outside_root: AllowOutsideOpt = ALLOW_OUTSIDE_ROOT,
    log_json: LogJsonOpt = None,
) -> None:
    """Stylize every job of MANIFEST on a Dask cluster into a zarr store; skips what is done."""
    from pipeline.run.execute import RunOptions, run_manifest

    options = RunOptions(
        manifest=manifest,
        store=store,
        profile=profile,
        config=config,
        scheduler_address=scheduler_address,
        scheduler_file=scheduler_file,
        cluster=cluster.value,
        workers=workers,
        device=device.value,
        worker_timeout=worker_timeout,
        only=tuple(only or ()),
        force=force,
        allow_outside_root=allow_outside_root,
        log_json=log_json,
    )
    try:
        code = run_manifest(options, console=out)
    except WeftError as error:
        _fail(error)
    raise typer.Exit(code)


@app.command()
def plan(
    manifest: ManifestArg,
    store: StoreOpt = Path("weft-out/catalogue.zarr"),
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    only: OnlyOpt = None,
    force: ForceOpt = False,
    allow_outside_root: AllowOutsideOpt = ALLOW_OUTSIDE_ROOT,
) -> None:
    """Show what `weft run` would do: jobs, scales, tiles, what is skipped, a work estimate."""
    from pipeline.run.execute import RunOptions, plan_run
    from pipeline.run.plan import print_plan

    options = RunOptions(manifest=manifest, store=store, profile=profile, config=config, only=tuple(only or ()),
                         force=force, allow_outside_root=allow_outside_root)  # fmt: skip
    try:
        the_plan = plan_run(options)
    except WeftError as error:
        _fail(error)
    print_plan(the_plan, out)


@app.command()
def train(
    manifest: ManifestArg,
    style: Annotated[
        Optional[str], typer.Option("--style", help="Train the models of this style id (default: every house style).")
    ] = None,
    store: StoreOpt = Path("weft-out/catalogue.zarr"),
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    device: DeviceOptT = DeviceOpt["auto"],
    allow_outside_root: AllowOutsideOpt = ALLOW_OUTSIDE_ROOT,
) -> None:
    """Train the feed-forward model of a house style (engine = "feedforward" jobs) into STORE; resumes."""
    from pipeline.run.execute import RunOptions
    from pipeline.train_cli import train_command

    options = RunOptions(manifest=manifest, store=store, profile=profile, config=config,
                         allow_outside_root=allow_outside_root)  # fmt: skip
    try:
        code = train_command(options, style, device.value, console=out)
    except WeftError as error:
        _fail(error)
    raise typer.Exit(code)


@app.command()
def validate(
    manifest: ManifestArg,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    allow_outside_root: AllowOutsideOpt = ALLOW_OUTSIDE_ROOT,
) -> None:
    """Check MANIFEST and every file it names; print every problem at once; exit 1 if any."""
    from rich.markup import escape

    from pipeline.manifest.load import validate_manifest

    try:
        problems = validate_manifest(manifest, profile=profile, config=config, allow_outside_root=allow_outside_root)
    except WeftError as error:
        _fail(error)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        colour = "red" if problem.severity == "error" else "yellow"
        # messages quote TOML tables ([limits], [[styles]]): escape them, they are not rich markup
        out.print(f"[{colour}]{problem.severity}[/]: {escape(str(problem))}", highlight=False)
    warnings = len(problems) - len(errors)
    if errors:
        out.print(f"[bold red]{len(errors)} error(s)[/] in {escape(str(manifest))}", highlight=False)
        raise typer.Exit(1)
    note = f" ({warnings} warning(s))" if warnings else ""
    out.print(f"[green]ok[/]: {escape(str(manifest))} is valid{note}", highlight=False)


@app.command()
def stylize(
    design: Annotated[Path, typer.Argument(help="Design image (the content).")],
    style: Annotated[list[Path], typer.Argument(help="Style image(s); several are blended equally.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output PNG.")],
    size: Annotated[
        Optional[str], typer.Option("--size", help="Output size: W (long side) or WxH in pixels.")
    ] = None,
    repeat: Annotated[
        RepeatOpt, typer.Option("--repeat", parser=_repeat, help="Repeat type: block, half-drop, brick, mirror, drop-1/3 ...")
    ] = Repeat.BLOCK,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    iterations: Annotated[
        Optional[int], typer.Option("--iterations", "-i", min=1, help="Optimiser steps at the first scale.")
    ] = None,
    scales: Annotated[Optional[int], typer.Option("--scales", min=1, help="Number of coarse-to-fine scales.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same machine: same bytes).")] = 0,
    device: DeviceOptT = DeviceOpt["auto"],
    preview: Annotated[
        Optional[str], typer.Option("--preview", help="Also write the result repeated RxC (e.g. 2x2) next to OUTPUT.")
    ] = None,
    engine: Annotated[
        Optional[EngineOpt], typer.Option("--engine", help="optimise (default) or feedforward (needs --model).")
    ] = None,
    model: Annotated[
        Optional[Path], typer.Option("--model", help="A trained model: a store's models/ID folder or its .safetensors.")
    ] = None,
) -> None:
    """Stylize one design with one or more styles into a seamless PNG: no Dask, no zarr."""
    from pipeline.stylize_cli import stylize_command

    try:
        stylize_command(
            design=design,
            styles=style,
            output=output,
            size=size,
            repeat=repeat.value,
            profile=profile,
            config=config,
            iterations=iterations,
            scales=scales,
            seed=seed,
            device=device.value,
            preview=preview,
            engine=engine.value if engine else None,
            model=model,
            console=out,
        )
    except WeftError as error:
        _fail(error)


@app.command()
def inspect(
    design: Annotated[Path, typer.Argument(help="Design image to analyse.")],
    repeat: Annotated[
        Optional[RepeatOpt],
        typer.Option("--repeat", parser=_repeat, help="Only this repeat type (default: block, half-drop, brick, mirror, "
                     "drop-1/3, brick-1/3)."),
    ] = None,
    extract: Annotated[
        Optional[Path],
        typer.Option(
            "--extract", help="Cut one repeat tile out of the photographed DESIGN into this PNG, and draw the "
            "lattice on the photo beside it (TILE.overlay.png).",
        ),
    ] = None,
    mask: Annotated[
        Optional[Path],
        typer.Option(
            "--mask", help="Write the automatic ground/motif mask of DESIGN (mask = \"auto\") into this PNG, ground "
            "black, motif white, and the design with its ground dimmed beside it (MASK.overlay.png).",
        ),
    ] = None,
) -> None:
    """Is DESIGN seamless? Seam ratio under each repeat type and its detected repeat period."""
    from pipeline.repeat.analysis import inspect_command

    try:
        if mask is not None:
            from pipeline.repeat.automask import write_auto_mask

            write_auto_mask(design, repeat.value if repeat else "block", mask, out)
            return
        inspect_command(design, repeat=repeat.value if repeat else None, console=out, extract=extract)
    except WeftError as error:
        _fail(error)


@app.command()
def status(
    store: Annotated[Path, typer.Argument(help="zarr store written by `weft run`.")],
    runs: Annotated[bool, typer.Option("--runs", help="List the runs recorded in STORE instead of its jobs.")] = False,
) -> None:
    """Jobs in STORE: state, tiles done, timings, errors (--runs: every run, its host, counts, exit code)."""
    from pipeline.deliver.status import runs_command, status_command

    try:
        code = (runs_command if runs else status_command)(store, console=out)
    except WeftError as error:
        _fail(error)
    raise typer.Exit(code)


@app.command()
def unlock(store: Annotated[Path, typer.Argument(help="zarr store written by `weft run`.")]) -> None:
    """Remove STORE's run lock left by a run that was killed; only when no `weft run` uses it."""
    from pipeline.run.lock import break_lock

    try:
        removed = break_lock(store)
    except WeftError as error:
        _fail(error)
    if removed is None:
        out.print(f"no lock on {escape(str(store))}", highlight=False)
        return
    out.print(
        f"removed the lock on {escape(str(store))}: pid {removed.get('pid', '?')} on host "
        f"{escape(str(removed.get('host', '?')))}, started {escape(str(removed.get('started', '?')))}, "
        f"command: {escape(str(removed.get('command', '?')))}",
        highlight=False,
    )


@app.command()
def export(
    store: Annotated[Path, typer.Argument(help="zarr store written by `weft run`.")],
    job_ids: Annotated[Optional[list[str]], typer.Argument(help="Jobs to export (default: all finished).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write files into.")] = Path("weft-out/export"),
    fmt: Annotated[FormatOpt, typer.Option("--format", "-f", help="File format.")] = FormatOpt["tiff"],
    dpi: Annotated[Optional[int], typer.Option("--dpi", min=1, help="Override the job's dpi tag.")] = None,
    preview: Annotated[
        Optional[str], typer.Option("--preview", help="Also write the tile repeated RxC under its repeat type.")
    ] = None,
    separations: Annotated[
        bool, typer.Option("--separations", help="Also write the screen-print set (indexed TIFF, one TIFF per colour).")
    ] = False,
    colourways: Annotated[bool, typer.Option("--colourways", help="With --separations: each colourway as a TIFF.")] = False,
    colors: Annotated[
        Optional[int], typer.Option("--colors", min=2, max=255, help="With --separations: colours (default: the job's).")
    ] = None,
) -> None:
    """Write finished jobs as print files (TIFF/PNG at dpi, sRGB ICC, provenance in metadata)."""
    from pipeline.deliver.export import export_command
    from pipeline.deliver.print_set import export_with_separations

    ids = tuple(job_ids or ())
    try:
        if separations:
            code = export_with_separations(store, ids, out_dir, fmt=fmt.value, dpi=dpi, preview=preview, colors=colors,
                                           colourways=colourways, console=out)  # fmt: skip
        else:
            code = export_command(store, job_ids=ids, out_dir=out_dir, fmt=fmt.value, dpi=dpi, preview=preview, console=out)
    except WeftError as error:
        _fail(error)
    raise typer.Exit(code)


@app.command()
def separate(
    store: Annotated[Path, typer.Argument(help="zarr store written by `weft run`.")],
    job_ids: Annotated[Optional[list[str]], typer.Argument(help="Jobs to separate (default: all finished).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the print set into.")] = Path(
        "weft-out/separations"
    ),
    colors: Annotated[
        Optional[int], typer.Option("--colors", "-n", min=2, max=255, help="Number of spot colours (default: the job's colors).")
    ] = None,
    palette: Annotated[
        Optional[str], typer.Option("--palette", help='Snap to these inks: "#1b2a49,#f2e8cf,...".')
    ] = None,
    palette_from: Annotated[
        Optional[str], typer.Option("--palette-from", help="'design': find the inks in the design, not the result.")
    ] = None,
    min_area_mm2: Annotated[
        Optional[float], typer.Option("--min-area-mm2", min=0, help="Remove specks smaller than this (mm² at the job's dpi).")
    ] = None,
    colourways: Annotated[bool, typer.Option("--colourways", help="Also write each colourway as a TIFF.")] = False,
) -> None:
    """Separate finished jobs into spot colours: indexed TIFF, one TIFF per colour, swatch sheet."""
    from pipeline.deliver.print_set import separate_command

    try:
        code = separate_command(
            store, tuple(job_ids or ()), out_dir, colors=colors, palette=palette, palette_from=palette_from,
            min_area_mm2=min_area_mm2, colourways=colourways, console=out,
        )  # fmt: skip
    except WeftError as error:
        _fail(error)
    raise typer.Exit(code)


@app.command()
def report(
    store: Annotated[Path, typer.Argument(help="zarr store written by `weft run`.")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("weft-out/report.html"),
) -> None:
    """Write a self-contained HTML contact sheet of every job in STORE."""
    from pipeline.deliver.report import report_command

    try:
        report_command(store, out_file, console=out)
    except WeftError as error:
        _fail(error)


def main() -> None:
    """Entry point of the ``weft`` console script (Ctrl-C: ``weft run`` stops cleanly itself, exit 130)."""
    app()


if __name__ == "__main__":
    main()
