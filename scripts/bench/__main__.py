"""Measure weft's speed, memory and overhead, print the tables, and update docs/benchmarks.md.

Run from the repository root:

    .venv/bin/python -m scripts.bench                                  # every section, print tables
    .venv/bin/python -m scripts.bench --only engine,padding --write docs/benchmarks.md
    .venv/bin/python -m scripts.bench --only pipeline --json /tmp/pipeline.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from scripts.bench import engine, export, feedforward, geometry, load, padding, pipeline_run, separation, style_span, tile_memory, ceiling, throughput
from scripts.bench.machine import LoadSampler, git_commit, load1, machine
from scripts.bench.render import markdown_block, print_tables, rerender, write_markdown

#: section name -> module, in the order they run and stand in the markdown
SECTIONS: dict[str, ModuleType] = {
    "engine": engine, "padding": padding, "geometry": geometry, "pipeline": pipeline_run, "export": export,
    "separation": separation,
    "load": load, "feedforward": feedforward, "style_span": style_span, "tile_memory": tile_memory,
    "ceiling": ceiling, "throughput": throughput,
}  # fmt: skip
PIPELINE = pipeline_run.PIPELINE_SETTINGS


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m scripts.bench", description=__doc__.split("\n\n")[0],
        epilog="What each section measures and what its figures showed: docs/benchmarks.md.",
    )  # fmt: skip
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections (default all): {','.join(SECTIONS)}")
    p.add_argument("--write", type=Path, help="replace these sections' generated blocks in a markdown file")
    p.add_argument("--json", type=Path, help="also dump the raw rows here")
    p.add_argument("--from-json", type=Path,
                   help="measure nothing: re-render the --only sections of --write from --json output")
    p.add_argument("--device", default="all", choices=["all", "cpu", "cuda"],
                   help="engine, padding, geometry, pipeline")
    p.add_argument("--threads", type=_ints, default=(1, 2), help="torch CPU threads: engine (each), padding (the last)")
    p.add_argument("--engine-sizes", type=_ints, default=(256, 512), help="engine and padding sizes, px")
    p.add_argument("--rounds", type=int, default=7, help="engine and padding: alternating rounds")
    p.add_argument("--steps", type=int, default=5, help="engine: L-BFGS steps per timed block (first dropped)")
    p.add_argument("--loss-iterations", type=int, default=100, help="engine: iterations of the loss rows (0: none)")
    p.add_argument("--loss-sizes", type=_ints, default=None,
                   help="engine: sizes of the loss rows (default: engine sizes)")
    p.add_argument("--geometry-size", type=int, default=4096, help="geometry: repeat side, px")
    p.add_argument("--pipeline-sizes", type=_ints, default=(1024, 2048), help="pipeline: output sizes, px")
    p.add_argument("--pipeline-iterations", type=int, default=PIPELINE["iterations"],
                   help="pipeline: coarse iterations")
    p.add_argument("--pipeline-refine-iterations", type=int, default=PIPELINE["refine_iterations"],
                   help="pipeline: iterations per refined scale")
    p.add_argument("--tile-size", type=int, default=PIPELINE["tile_size"], help="pipeline: tile core, px")
    p.add_argument("--export-size", type=int, default=8192, help="export and separation: job side, px")
    p.add_argument("--load-jobs", type=int, default=200, help="load: number of jobs (in 4 batches)")
    p.add_argument("--ff-sizes", type=_ints, default=(1024, 2048), help="feedforward: sizes of both engines, px")
    p.add_argument("--ff-print-sizes", type=_ints, default=(4096, 8192), help="feedforward: print sizes, px")
    p.add_argument("--ff-train-steps", type=int, default=None, help="feedforward: training steps (default: the setting's)")
    p.add_argument("--ff-quality-size", type=int, default=512, help="feedforward: size both results are scored at")
    p.add_argument("--ceiling-sizes", type=_ints, default=ceiling.SIZES, help="ceiling: iteration sizes, px")
    p.add_argument("--label", default="", help="ceiling: what code the rows measure (e.g. 'before', 'after')")
    p.add_argument("--verbose", action="store_true", help="show weft run's own plan/progress output")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser().error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.from_json:
        if not args.write:
            parser().error("--from-json needs --write FILE")
        rerender(args.from_json, args.write, chosen, SECTIONS)
        return 0
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python", "-m", "scripts.bench", *map(shlex.quote, argv)])
    info = machine()
    thread_notes = {
        "engine": f"torch threads {', '.join(map(str, args.threads))} (each measured)",
        "padding": f"torch threads {args.threads[-1]}",
        "geometry": "torch threads 1 (numpy is single-threaded)",
        "pipeline": "2 worker processes x 1 thread, torch threads 1 per worker",
        "export": "one process",
        "separation": "one process, numpy and scipy single-threaded",
        "load": "2 worker processes x 1 thread, torch threads 1 per worker",
        "feedforward": "2 worker processes x 1 thread (training: train_threads 2); optimise: 2 threads, "
                       "projections: 1 thread per worker",
        "style_span": "one process, torch threads 2",
        "tile_memory": "one process per size, torch threads 2",
        "ceiling": f"one process, torch threads {', '.join(map(str, args.threads))}",
        "throughput": "weft stylize: coarse_threads 2; weft run: 2 worker processes x 1 thread, coarse_threads 2, "
                      "tile_threads 1",
    }

    def log(message: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)

    log("machine: " + json.dumps(info))
    quiet = not args.verbose
    runners: dict[str, Callable[[], list[dict]]] = {
        "engine": lambda: engine.bench_engine(
            args.engine_sizes, rounds=args.rounds, steps=args.steps, loss_iterations=args.loss_iterations,
            loss_sizes=args.loss_sizes, threads=args.threads, device=args.device, log=log,
        ),
        "padding": lambda: padding.bench_padding(args.engine_sizes, rounds=args.rounds, threads=args.threads[-1],
                                                 device=args.device, log=log),
        "geometry": lambda: geometry.bench_geometry(args.geometry_size, device=args.device, log=log),
        "pipeline": lambda: pipeline_run.bench_pipeline(
            args.pipeline_sizes, device=args.device, quiet=quiet, log=log,
            settings={"tile_size": args.tile_size, "iterations": args.pipeline_iterations,
                      "refine_iterations": args.pipeline_refine_iterations},
        ),
        "export": lambda: export.bench_export_rows(args.export_size, log=log),
        "separation": lambda: separation.bench_separation(args.export_size, log=log),
        "load": lambda: load.bench_load(args.load_jobs, quiet=quiet, log=log),
        "style_span": lambda: style_span.bench_style_span(log=log),
        "tile_memory": lambda: tile_memory.bench_tile_memory(log=log),
        "ceiling": lambda: ceiling.bench_ceiling(args.ceiling_sizes, args.threads, args.label, log=log),
        "throughput": lambda: throughput.bench_throughput(log=log),
        "feedforward": lambda: feedforward.bench_feedforward(
            args.ff_sizes, args.ff_print_sizes, args.ff_quality_size, device=args.device, quiet=quiet, log=log,
            training={"train_steps": args.ff_train_steps} if args.ff_train_steps else None,
        ),
    }  # fmt: skip
    results: dict[str, list[dict]] = {}
    metas: dict[str, dict] = {}
    for name in chosen:
        log(f"--- {name} (load {load1()})")
        started = time.perf_counter()
        with LoadSampler(5.0) as loads:
            rows = runners[name]()
        metas[name] = {
            "command": command,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load": loads.summary(),
            "seconds": time.perf_counter() - started,
            "threads": thread_notes[name],
            "commit": git_commit(),
        }
        results[name] = rows
        print_tables(name, SECTIONS[name], rows)
        if args.write:  # after every section, so a long run leaves what it has
            write_markdown(args.write, {name: markdown_block(name, SECTIONS[name], rows, metas[name])}, info, SECTIONS)
        if args.json:
            saved = {"machine": info, "results": results, "meta": metas}
            args.json.write_text(json.dumps(saved, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
