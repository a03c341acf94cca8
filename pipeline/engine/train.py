"""Training a house style's network: the engine's own losses, seeded, resumable bit for bit.

The losses are the optimisation engine's (content at ``content_layer``, blended Gram style,
TV) from the same VGG-19 and the same style targets, so the two engines are scored on one
scale. Everything a step depends on is either in the checkpoint (network, Adam moments, step)
or derived from (``train_seed``, step) (the crops), so a training resumed from a checkpoint
ends with the same bytes as one that never stopped, on the same machine and thread count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pipeline.engine.device import precision_context
from pipeline.engine.losses import StyleTargets, content_loss, style_loss, tv_loss
from pipeline.engine.model_files import checkpoint_tensors, restore_checkpoint
from pipeline.engine.optimise import derive_seed
from pipeline.engine.train_crops import TrainingImage, crop_batch
from pipeline.engine.transform_net import TransformNet
from pipeline.engine.vgg import get_model
from pipeline.errors import WeftError
from pipeline.settings import Settings

#: Called after every step with (step, total_steps, losses of the step).
TrainCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainingState:
    """Where a training stands: the step reached, the loss curve so far, the seconds spent."""

    step: int = 0
    curve: list[list[float]] = field(default_factory=list)  # [content, style, total] per step
    seconds: float = 0.0


#: Called at every checkpoint with the state and the tensors to save.
CheckpointCallback = Callable[[TrainingState, dict[str, torch.Tensor]], None]


def new_network(settings: Settings) -> TransformNet:
    """The untrained network of ``settings``, its start drawn from ``train_seed`` alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(settings.train_seed, "network"))
        return TransformNet(settings.ff_width, settings.ff_blocks)


def train_network(
    images: list[TrainingImage],
    targets: StyleTargets,
    settings: Settings,
    device: torch.device,
    *,
    scales: tuple[float, float] | None = None,
    resume: tuple[TrainingState, dict[str, torch.Tensor]] | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    callback: TrainCallback | None = None,
) -> tuple[TransformNet, TrainingState]:
    """Train from scratch (or from ``resume``) to ``settings.train_steps``; returns the net in eval mode.

    ``scales`` is the crops' resize range (None: ``settings.train_scales``, which must then be
    numbers); ``on_checkpoint`` is called every ``train_checkpoint_every`` steps and at the end.
    """
    scales = scales or settings.train_scales  # type: ignore[assignment]
    if not isinstance(scales, tuple):
        raise WeftError('train_scales = "auto" is resolved by the plan from the jobs; pass scales=')
    if not images:
        raise WeftError("a feed-forward training needs at least one design to train on")
    vgg = get_model(settings.weights, str(device), pooling=settings.pooling)
    net = new_network(settings).to(device=device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.train_lr)
    state = TrainingState()
    if resume is not None:
        state = TrainingState(resume[0].step, [list(v) for v in resume[0].curve], resume[0].seconds)
        restore_checkpoint(net, optimizer, resume[1])
    targets = targets.to(device)
    layers = list(dict.fromkeys([settings.content_layer, *settings.style_layers]))
    while state.step < settings.train_steps:
        started = time.perf_counter()
        crops = crop_batch(images, settings, state.step, device, scales)
        losses = _step(net, vgg, optimizer, crops, targets, layers, settings, device)
        if not all(math.isfinite(v) for v in losses.values()):
            raise WeftError(f"the training diverged at step {state.step + 1} (losses {losses}); lower train_lr")
        state.step += 1
        state.curve.append([losses["content"], losses["style"], losses["total"]])
        state.seconds += time.perf_counter() - started
        if callback is not None:
            callback(state.step, settings.train_steps, losses)
        if on_checkpoint is not None and (
            state.step % settings.train_checkpoint_every == 0 or state.step == settings.train_steps
        ):
            on_checkpoint(state, checkpoint_tensors(net, optimizer))
    return net.eval(), state


def _step(
    net: TransformNet,
    vgg: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    crops: torch.Tensor,
    targets: StyleTargets,
    layers: list[str],
    settings: Settings,
    device: torch.device,
) -> dict[str, float]:
    """One Adam step on one batch; the crops are not periodic, so VGG and the net pad with zeros."""
    optimizer.zero_grad(set_to_none=True)
    with precision_context(settings.precision, device):
        with torch.no_grad():
            content_target = vgg(crops, [settings.content_layer], None)[settings.content_layer]
        output = net(crops, None)
        feats = vgg(output.contiguous(memory_format=torch.channels_last), layers, None)
    c_loss = content_loss(feats[settings.content_layer], content_target)
    s_loss = sum(
        style_loss({name: feats[name][i : i + 1] for name in settings.style_layers}, targets, settings.style_layer_weights)
        for i in range(crops.shape[0])
    ) / crops.shape[0]
    loss = settings.content_weight * c_loss + settings.style_weight * s_loss
    if settings.tv_weight > 0:
        loss = loss + settings.tv_weight * tv_loss(output)
    loss.backward()
    optimizer.step()
    return {"content": c_loss.item(), "style": float(s_loss.item()), "total": loss.item()}


def training_targets(styles: list[tuple[object, float]], settings: Settings, device: torch.device) -> StyleTargets:
    """The Gram targets a house style is trained to: its style at the size the optimisation engine uses at print size.

    At print sizes the optimisation engine's style image is capped at ``style_max_size`` (and at
    the scan's own size); training at that scale gives the network the same brush size in pixels.
    """
    from pipeline.engine.targets import compute_style_targets

    vgg = get_model(settings.weights, str(device), pooling=settings.pooling)
    side = settings.style_max_size
    return compute_style_targets(vgg, styles, (side, side), settings, device)  # type: ignore[arg-type]
