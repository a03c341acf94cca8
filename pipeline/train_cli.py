"""``weft train MANIFEST --style ID``: train the house-style models a manifest's jobs use, into the store.

The same training `weft run` does as a graph task, here in this process, with the run's
progress sinks (bars in a terminal, plain lines in a log). A model already trained is
reported and left alone; a killed training resumes from its last checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from pipeline.errors import WeftError
from pipeline.run.events import RunEvents, run_events
from pipeline.run.execute import RunOptions, plan_run
from pipeline.run.lock import RunLock
from pipeline.run.model_plan import ModelPlan
from pipeline.run.plan import Plan, print_models


def models_for_style(plan: Plan, style_id: str | None) -> list[ModelPlan]:
    """The models of the plan's feed-forward jobs that use ``style_id`` (every model with None)."""
    models = [m for m in plan.models if style_id is None or style_id in m.style_ids]
    if not models:
        known = sorted({s for m in plan.models for s in m.style_ids})
        hint = (f"styles of feed-forward jobs: {', '.join(known)}" if known
                else 'no job has engine = "feedforward"; set it in [defaults] or on a job')  # fmt: skip
        raise WeftError(f"{plan.manifest.path}: no feed-forward job uses style {style_id!r} ({hint})")
    return models


def train_command(options: RunOptions, style_id: str | None, device: str, console: Console) -> int:
    """Train every model of ``style_id`` into the store (resuming checkpoints); 0 when all are trained."""
    from pipeline.run.tasks import prepare_torch
    from pipeline.run.training import train_into_store

    plan = plan_run(options)
    models = models_for_style(plan, style_id)
    print_models(plan, console)
    with run_events(console) as events, RunLock(options.store, command=f"weft train {options.manifest}"):
        for model in models:
            if model.trained:
                console.print(f"{model.id}: already trained (reused)", highlight=False)
                continue
            torch_device = prepare_torch(device, model.settings.train_threads)
            limit = plan.manifest.limits.max_input_pixels
            record = train_into_store(str(options.store), model, torch_device, limit, _Pace(model.id, events))
            console.print(
                f"{model.id}: trained {record['steps']} steps in {record['seconds']:.0f} s on {record['device']}; "
                f"final loss {record['curve'][-1][2]:.4g}; {Path(options.store) / 'models' / model.id}",
                highlight=False,
            )
    return 0


class _Pace:
    """A training callback that sends each step, with its elapsed time, to the run's event sinks."""

    def __init__(self, ident: str, events: RunEvents) -> None:
        self.ident, self.events, self.started = ident, events, time.perf_counter()

    def __call__(self, step: int, steps: int, losses: dict[str, float]) -> None:
        seconds = round(time.perf_counter() - self.started, 1)
        self.events.training(model=self.ident, step=step, steps=steps, loss=losses["total"], seconds=seconds)
