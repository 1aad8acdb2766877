"""``evp train --stage disentangle|audio2lm|renderer``: the stage table and the command."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from evpcli.cli.app import app, _Computes, _device_name, _emit, _not_built, state


class Stage(str, Enum):
    disentangle = "disentangle"
    audio2lm = "audio2lm"
    renderer = "renderer"


@dataclass(frozen=True)
class TrainStage:
    """One entry of ``evp train``'s stage table: the function that trains it (given the config overrides and the
    device) and the stage-specific options it accepts."""

    run: Callable[[dict, bool, str], Any] | None
    options: frozenset[str] = frozenset()


def _run_disentangle(overrides: dict, resume: bool, device: str):
    from evpcli.config import DisentangleTrainConfig
    from evpcli.train.disentangle import train_disentangle

    from evpcli.config import DisentangleConfig

    net = DisentangleConfig(cmvn=overrides.pop("cmvn", DisentangleConfig().cmvn))
    cfg = dataclasses.replace(DisentangleTrainConfig(), **overrides)
    return train_disentangle(state.ws, cfg, net, device=device, resume=resume, progress=state.progress)


def _run_audio2lm(overrides: dict, resume: bool, device: str):
    from evpcli.config import Audio2LandmarkTrainConfig
    from evpcli.train.audio2lm import train_audio2lm

    ablate = overrides.pop("ablate", "")
    cfg = dataclasses.replace(Audio2LandmarkTrainConfig(), **overrides)
    return train_audio2lm(state.ws, cfg, ablate=ablate, device=device, resume=resume, progress=state.progress)


def _run_renderer(overrides: dict, resume: bool, device: str):
    from evpcli.config import RendererTrainConfig
    from evpcli.train.renderer import train_renderer

    target = overrides.pop("target", None)
    if target is None:
        raise typer.BadParameter("--stage renderer needs --target VIDEO (the person's video to train on)")
    hybrid = overrides.pop("hybrid", None)
    cfg = dataclasses.replace(RendererTrainConfig(), **overrides)
    return train_renderer(state.ws, target, cfg, device=device, resume=resume, progress=state.progress,
                          hybrid=hybrid)


TRAIN_STAGES: dict[Stage, TrainStage] = {
    Stage.disentangle: TrainStage(_run_disentangle, frozenset({"ablate", "holdout_sentences", "pretrain_steps",
                                                               "augment_copies", "cmvn"})),
    Stage.audio2lm: TrainStage(_run_audio2lm, frozenset({"ablate", "finetune_encoders", "augment_copies"})),
    Stage.renderer: TrainStage(_run_renderer, frozenset({"target", "hybrid", "workers"})),
}
COMMON_TRAIN_OPTIONS = frozenset({"epochs", "batch_size", "steps_per_epoch", "seed"})


@app.command(cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp train --stage disentangle --epochs 30\n\n"
    "  evp train --stage audio2lm --resume\n\n"
    "  evp train --stage renderer --target me.mp4\n\n"
    "  torchrun --standalone --nproc-per-node 2 -m evpcli train --stage disentangle --batch-size 32   (data "
    "parallel: each process trains its part of every batch; rank 0 writes)"))
def train(
    stage: Stage = typer.Option(..., help="Which model to train: disentangle (emotion/content encoders), audio2lm "
                                "(speech to landmarks; needs disentangle), renderer."),
    epochs: int | None = typer.Option(None, help="Epochs (default from the stage's config)."),
    batch_size: int | None = typer.Option(None, help="Batch size (default from the stage's config)."),
    steps_per_epoch: int | None = typer.Option(None, help="Batches per epoch (default from the stage's config)."),
    resume: bool = typer.Option(False, help="Continue the run with these settings (interrupted or finished with "
                                "fewer epochs) up to --epochs; never back to fewer epochs than it has done."),
    seed: int | None = typer.Option(None, help="Random seed (default 0; runs are deterministic on CPU)."),
    ablate: str | None = typer.Option(None, help="disentangle: turn one loss off (cross|self|cla|con); audio2lm: "
                                      "build on the encoders trained with that loss off (for `evaluate --ablations`)."),
    holdout_sentences: int | None = typer.Option(None, help="disentangle: hold out the last N sentence ids (never "
                                                 "trained on) for the held-out metrics (default 2)."),
    pretrain_steps: int | None = typer.Option(None, help="disentangle: batches of emotion-classifier pre-training "
                                              "of the emotion encoder (0: none)."),
    finetune_encoders: bool | None = typer.Option(None, "--finetune-encoders", help="audio2lm: fine-tune the "
                                                  "disentanglement encoders with the LSTM (the paper's setting; about "
                                                  "20x slower per step on a CPU)."),
    target: Path | None = typer.Option(None, help="renderer: the target video to train a renderer for."),
    hybrid: bool | None = typer.Option(None, "--hybrid/--no-hybrid", help="renderer: also feed the warp renderer's "
                                       "output (the network learns the residual; the default) or not (the paper's "
                                       "renderer: guidance map and previous frames only)."),
    workers: int | None = typer.Option(None, min=0, help="renderer: processes assembling the training batches "
                                       "(default 0: the training process; the weights do not depend on it)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N; overrides the global "
                                      "--device.", callback=_device_name),
    augment_copies: int | None = typer.Option(None, help="disentangle, audio2lm: augmented copies of every clip's "
                                              "audio (noise, reverb, telephone band, pitch, gain; 0: none; default "
                                              "from the stage's config)."),
    cmvn: bool | None = typer.Option(None, "--cmvn/--no-cmvn", help="disentangle: per-utterance cepstral mean and "
                                     "variance normalisation of the content encoder's input (default from config)."),
    as_json: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
) -> None:
    """Train one stage's model on the prepared workspace (checkpoints every epoch; --resume continues).

    Until a run finishes, every command keeps using the stage's previous finished model; an interrupted run is
    continued with --resume. A finished model is kept when the stage is trained again with other epochs.

    disentangle: content and emotion encoders, decoder and classifier, on the pairs of `evp build-pairs`.
    It ends by printing held-out emotion accuracy, cross-reconstruction distances, content invariance.

    audio2lm: identity MLP + 3-layer LSTM from content and emotion codes to landmark motion (16 PCA
    coefficients of the displacement from the actor's reference face), on top of the newest disentanglement
    model (whose held-out sentences it also holds out); prints held-out landmark distances at the end.

    renderer: the per-target neural renderer, trained on --target alone (its last 15 % held out); prints
    held-out SSIM, PSNR and face error beside the warp renderer's, and writes a PNG grid of held-out frames.
    """
    given = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size, "steps_per_epoch": steps_per_epoch,
                               "seed": seed, "ablate": ablate, "holdout_sentences": holdout_sentences,
                               "pretrain_steps": pretrain_steps, "finetune_encoders": finetune_encoders,
                               "target": target, "hybrid": hybrid, "augment_copies": augment_copies,
                               "cmvn": cmvn, "workers": workers}.items() if v is not None}
    entry = TRAIN_STAGES[stage]
    wrong = sorted(set(given) - COMMON_TRAIN_OPTIONS - entry.options)
    if wrong:
        raise typer.BadParameter(f"{', '.join('--' + w.replace('_', '-') for w in wrong)} does not apply to "
                                 f"--stage {stage.value}")
    if entry.run is None:
        _not_built(f"train --stage {stage.value}")
    result = entry.run(given, resume, device if device else state.device)
    from evpcli.train.distributed import from_env

    if from_env().main:  # under torchrun every rank returns rank 0's result; rank 0 prints it
        _emit(result.to_dict(), as_json, result.summary())
