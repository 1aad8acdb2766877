"""The ``evp`` command: a thin Typer shell over the stage functions.

Each subcommand parses options, calls one library function and prints its result (a rich summary on stderr,
or JSON on stdout with ``--json``). Exit codes: 0 success, 1 the work failed or an input is bad, 2 usage error
(including a stage this version does not build yet), 130 interrupted. Errors are one line; ``-v`` adds the
traceback.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from evpcli import __version__
from evpcli.errors import EvpError, NotBuiltError, UsageError
from evpcli.paths import check_output, check_output_dir
from evpcli.progress import Progress, RichProgress
from evpcli.workspace import DEFAULT_WORKSPACE, Workspace


@dataclass
class State:
    workspace: Path = Path(DEFAULT_WORKSPACE)
    device: str = "auto"
    verbose: bool = False
    quiet: bool = False

    @property
    def ws(self) -> Workspace:
        ws = Workspace(self.workspace)
        ws.check_usable()  # a file given as the workspace: one line before any work
        return ws

    @property
    def console(self) -> Console:
        # summaries are not hard-wrapped when stderr is a log file or a pipe (batch scripts' logs)
        return Console(stderr=True, quiet=self.quiet, soft_wrap=not sys.stderr.isatty())

    @property
    def progress(self) -> Progress:
        return Progress() if self.quiet else RichProgress(self.console)


state = State()

app = typer.Typer(
    name="evp",
    help=(
        "Emotional talking-portrait videos from speech (EVP, CVPR 2021), on a CPU.\n\n"
        "Typical use:\n\n"
        "  evp demo                      (a first look: writes ./evp-demo/index.html)\n\n"
        "  evp render --audio speech.wav --emotion happy --target me.mp4 --out out.mp4\n\n"
        "  evp interpolate --from sad --to happy --audio speech.wav --target me.mp4 --out ramp.mp4\n\n"
        "Every subcommand shares one workspace (--workspace, env EVP_WORKSPACE) of cached MFCCs, landmarks, "
        "pairs, models and 3D fits; re-running a stage reuses what is cached. The global options (-w, -v, -q) "
        "may also come after the subcommand. Exit codes: 0 ok, 1 failed or bad input, 2 usage error, "
        "130 interrupted (Ctrl-C or SIGTERM; a re-run resumes)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain click help: wraps long option names instead of cutting them at 80 columns
)


class _Command(typer.core.TyperCommand):
    """A command whose usage line names positional arguments as click does (``SOURCE``, not Typer's ``{source}``)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if isinstance(p, typer.core.TyperArgument):
                pieces.append(p.name.upper() if p.required else f"[{p.name.upper()}]")
            else:
                pieces.extend(p.get_usage_pieces(ctx))
        return pieces


class _Computes(_Command):
    """A command that computes: its --help also lists the global options it takes after its name (--device ...)."""

    def format_options(self, ctx, formatter) -> None:
        super().format_options(ctx, formatter)
        with formatter.section("Global options (also taken after the command's name)"):
            formatter.write_dl([
                ("--device [auto|cpu|cuda|cuda:N]", "Where torch runs (default auto: CUDA when this torch build sees "
                 "a GPU, else the CPU)."),
                ("-w, --workspace DIR", "The workspace folder (env EVP_WORKSPACE)."),
                ("-q, --quiet / -v, --verbose", "No progress bars / full tracebacks.")])


def _device_name(value: str | None) -> str | None:
    if value is None:
        return None
    from evpcli.device import check_device_name

    try:
        return check_device_name(value)
    except EvpError as exc:
        raise typer.BadParameter(str(exc)) from None


def _version(value: bool) -> None:
    if value:
        print(f"evp {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    workspace: Path = typer.Option(DEFAULT_WORKSPACE, "--workspace", "-w", envvar="EVP_WORKSPACE",
                                   help="Workspace folder shared by all subcommands (cache of features, "
                                        "pairs, models, fits).", show_default=True),
    device: str = typer.Option("auto", "--device", help="Where torch runs: auto (CUDA when this torch build sees "
                               "a GPU, else the CPU), cpu, cuda or cuda:N (the N-th GPU). May also follow any "
                               "subcommand that computes (evp render --device cpu ...).", callback=_device_name),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail; full tracebacks on errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summaries (errors still shown)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    state.workspace, state.device, state.verbose, state.quiet = workspace, device, verbose, quiet


def _esc(text: Any) -> str:
    """A user string (a path, a reason quoting one) made safe to print through Rich: ``[`` is not markup."""
    from rich.markup import escape

    return escape(str(text))


def _emit(result: Any, as_json: bool, human: str | None = None) -> None:
    """Print a command's result: JSON on stdout for scripts, else a human summary on stderr."""
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    elif human is not None:
        state.console.print(human, markup=False, highlight=False)  # paths may hold [ ]: never Rich markup


def _not_built(stage: str) -> None:
    raise NotBuiltError(f"`evp {stage}` is not built in this version yet; see the README for what works")


def _jobs(jobs: int) -> int:
    if jobs < 1:
        raise typer.BadParameter("--jobs must be at least 1")
    return jobs


class ExecutorChoice(str, Enum):
    local = "local"
    ray = "ray"


_EXECUTOR_HELP = ("local: this machine (--jobs worker processes); ray: one Ray task per item (pip install "
                  "'evpcli[ray]'), on a local Ray of --jobs CPUs or the cluster at --ray-address; the tasks write "
                  "into the workspace (a shared folder on a cluster), this process alone writes its index.")
_RAY_ADDRESS_HELP = ("Ray cluster to join with --executor ray (auto, HOST:6379 or ray://HOST:10001); default: start a "
                     "local Ray inside this process.")


def _require_file(path: Path | None, option: str) -> Path:
    if path is None:
        raise typer.BadParameter(f"{option} is required")
    if not path.exists():
        raise EvpError(f"{path}: file not found (given as {option})")
    return path


# --------------------------------------------------------------------------- status
@app.command(epilog="Example:  evp status --json | jq .clips.total")
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Summarise what the workspace holds: clips by actor and emotion, pairs, models, fitted targets."""
    info = state.ws.status()
    if as_json:
        _emit(info, True)
        return
    from rich.table import Table

    con = Console(quiet=state.quiet, soft_wrap=not sys.stdout.isatty())  # the command's output: stdout, for pipes
    render_model = _render_model_line(state.ws)
    if not info["exists"]:
        con.print(f"workspace [bold]{_esc(info['workspace'])}[/] is empty: {_esc(render_model)}; `evp "
                  "prepare-dataset` fills it to train models of your own")
        return
    c = info["clips"]
    con.print(f"workspace [bold]{_esc(info['workspace'])}[/]: {c['ok']} clips ready, {c['failed']} failed, "
              f"{info['pairs']} pairs, {len(info['models'])} models, {len(info['fitted_targets'])} fitted targets")
    con.print(_esc(render_model))
    for run in info.get("unfinished_runs", []):
        con.print(f"unfinished {run['stage']} run {run['run']} (interrupted after epoch {run['epochs_done']}); "
                  f"`evp train --stage {run['stage']} --resume` with its settings continues it")
    if c["by_actor"]:
        emotions = sorted({e for d in c["by_actor"].values() for e in d})
        t = Table("actor", *emotions)
        for actor, d in sorted(c["by_actor"].items()):
            t.add_row(actor, *[str(d.get(e, 0)) for e in emotions])
        con.print(t)


def _render_model_line(ws: Workspace) -> str:
    """Which audio-to-landmark model render would use here (the same rule as render: the workspace's newest, else
    the shipped one)."""
    from evpcli.models import _locate

    try:
        _, source, _ = _locate(ws if ws.index_path.exists() else None, "audio2lm", None, "", True)
    except EvpError as exc:
        return f"render has no model to use ({exc})"
    return f"render would use the {source.origin} audio-to-landmark model {source.key}"


# --------------------------------------------------------------------------- stages
class Layout(str, Enum):
    mead = "mead"
    manifest = "manifest"


@app.command("synth-corpus", cls=_Command,
             epilog="Example:  evp synth-corpus corpus/ --actors 2 --sentences 6 --levels 1,3 --jobs 2")
def synth_corpus(
    out: Path = typer.Argument(..., help="Folder to write the corpus into (MEAD layout)."),
    actors: int = typer.Option(2, help="Number of synthetic actors (voices x faces)."),
    sentences: int = typer.Option(6, help="Sentences per emotion and level (the same texts in every emotion)."),
    emotions: str = typer.Option("all", help="Comma-separated emotion names, or 'all' for MEAD's eight."),
    levels: str = typer.Option("1,3", help="Comma-separated intensity levels (neutral always has level 1)."),
    size: int = typer.Option(256, help="Frame size in pixels (square)."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same bytes."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel worker processes."),
    preview: Path | None = typer.Option(None, help="Also write a contact sheet PNG (one frame per emotion and level)."),
    tts: str = typer.Option("espeak", help="Speech synthesizers for the actors' voices, comma-separated: espeak "
                            "(built in), festival (Festival's voices recorded from real people; needs `apt-get "
                            "install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts`); with both, "
                            "actors alternate."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write a MEAD-shaped emotional talking-face corpus with ground truth (speech, video, landmarks, pose).

    Speech is espeak-ng with emotional prosody; faces are a portrait warped to driving landmarks (visemes,
    FACS-style expressions, blinks, head motion). Writes OUT/<actor>/{video/front,audio,groundtruth}/<emotion>/
    level_<k>/<NNN>.{mp4,wav,npz}, OUT/sentences.csv and OUT/corpus.json. The same --seed gives the same bytes.
    """
    from evpcli.config import EMOTIONS
    from evpcli.corpus.synth import contact_sheet
    from evpcli.corpus.synth import synth_corpus as _synth

    check_output_dir(out, "OUT")
    if preview is not None:
        check_output(preview, [], "--preview")
    emotion_list = list(EMOTIONS) if emotions.strip().lower() == "all" else \
        [e.strip() for e in emotions.split(",") if e.strip()]
    try:
        level_list = [int(k) for k in levels.split(",") if k.strip()]
    except ValueError:
        raise EvpError(f"--levels must be comma-separated numbers among 1,2,3, got {levels!r}") from None
    summary = _synth(out, actors=actors, sentences=sentences, emotions=emotion_list, levels=level_list, size=size,
                     seed=seed, jobs=_jobs(jobs), progress=state.progress,
                     tts=tuple(t.strip().lower() for t in tts.split(",") if t.strip()))
    if preview is not None:
        summary["preview"] = str(contact_sheet(preview, emotions=emotion_list, levels=level_list, seed=seed,
                                               size=size))
    _emit(summary, as_json, f"wrote [bold]{summary['clips']}[/] clips ({summary['generated']} new, "
                            f"{summary['kept']} kept) of {len(summary['actors'])} actors to [bold]{out}[/]"
                            + (f"; contact sheet {preview}" if preview is not None else ""))


@app.command("prepare-dataset", cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp prepare-dataset ~/MEAD --layout mead --actors M003,W009 --emotions happy,neutral --jobs 2\n\n"
    "  evp prepare-dataset corpus/ --layout mead          (the output of evp synth-corpus)\n\n"
    "  evp prepare-dataset clips.csv --layout manifest --strict --json > report.json\n\n"
    "  evp prepare-dataset ~/MEAD --executor ray --ray-address auto   (a Ray cluster; -w on a shared folder)"))
def prepare_dataset(
    source: Path = typer.Argument(..., help="MEAD root folder (--layout mead) or manifest CSV (--layout manifest)."),
    layout: Layout = typer.Option(Layout.mead, help="mead: MEAD's folder tree; manifest: CSV with columns "
                                  "video,audio,actor,emotion,level,sentence."),
    view: str = typer.Option("front", help="MEAD camera view."),
    actors: str | None = typer.Option(None, help="Comma-separated actors to include (default all)."),
    emotions: str | None = typer.Option(None, help="Comma-separated emotions to include (default all)."),
    sentence_map: Path | None = typer.Option(None, help="Sentence map (which clips share a sentence): CSV with "
                                             "columns clip,sentence,text, clip = actor/emotion/level_k/NNN. "
                                             "Default for --layout mead: <root>/sentences.csv if present."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel workers (processes; with --executor ray and no "
                             "--ray-address, the local Ray's CPUs)."),
    executor: ExecutorChoice = typer.Option(ExecutorChoice.local, "--executor", help=_EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=_RAY_ADDRESS_HELP),
    strict: bool = typer.Option(False, help="Exit 1 if any clip is skipped."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try the clips that failed before again (clips "
                                      "that failed for the machine's reasons, a full disk or an I/O error, are "
                                      "always retried)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Compute MFCCs and tracked 68-point landmarks for every clip of a dataset, cached in the workspace.

    Clips that cannot be prepared (unreadable video, no face, audio and video lengths differing by more than
    0.5 s, unknown emotion) are skipped and listed at the end and in <workspace>/prepare-report.json. A re-run
    skips finished clips. Exit 0 when at least one clip is ready (with --strict: only when none failed).
    """
    from evpcli.prepare import prepare_dataset as run_prepare

    if sentence_map is not None:
        _require_file(sentence_map, "--sentence-map")
    try:
        report = run_prepare(state.ws, source, layout=layout.value, view=view, actors=actors, emotions=emotions,
                             sentence_map=sentence_map, jobs=_jobs(jobs), executor=executor.value,
                             ray_address=ray_address, progress=state.progress, retry_failed=retry_failed)
    except KeyboardInterrupt:
        print("evp: interrupted; finished clips are kept in the workspace and a re-run resumes", file=sys.stderr)
        raise
    if as_json:
        _emit(report.to_dict(), True)
    else:
        _print_prepare_report(report)
    if report.ok == 0:
        raise EvpError(f"no clip of {source} could be prepared ({len(report.failed)} skipped); the reasons are "
                       f"listed above and in {report.report_path}")
    if strict and report.failed:
        raise EvpError(f"{len(report.failed)} clip(s) skipped (--strict); the reasons are in {report.report_path}")


def _print_prepare_report(report) -> None:
    from rich.table import Table

    con = state.console
    for w in report.warnings:
        con.print(f"[yellow]warning:[/] {_esc(w)}")
    if report.failed:
        t = Table("skipped clip", "reason", title=f"{len(report.failed)} clip(s) skipped", title_justify="left")
        for f in report.failed:
            t.add_row(_esc(f["clip_id"]), _esc(f["reason"]))
        con.print(t)
    con.print(report.summary(), markup=False, highlight=False)


@app.command("build-pairs", cls=_Computes, epilog="Examples:\n\n  evp build-pairs\n\n  evp build-pairs --max-pairs-per-sentence 20 --json"
             "\n\n  evp build-pairs --window 50\n\n  evp build-pairs --executor ray --ray-address auto")
def build_pairs(
    max_pairs_per_sentence: int = typer.Option(0, help="Cap on emotion pairs per actor and sentence (0: all)."),
    frame_cost: str = typer.Option("l1", help="DTW frame cost: l1 (the paper's) or l2 (Euclidean)."),
    window: int = typer.Option(0, "--window", help="Sakoe-Chiba band: paths stay within N MFCC rows (10 ms each) of "
                               "the diagonal; faster, may cost more than the exact optimum (0: none, exact)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Parallel workers, one actor/sentence group each (processes; "
                             "with --executor ray and no --ray-address, the local Ray's CPUs)."),
    executor: ExecutorChoice = typer.Option(ExecutorChoice.local, "--executor", help=_EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=_RAY_ADDRESS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Align clips of the same sentence in two emotions with DTW over MFCCs (training pairs).

    Each two clips of one actor and sentence in different emotions, exact DTW over MFCC rows (L1 frame cost).
    The alignments are cached in the workspace; a re-run only aligns what changed.
    """
    from evpcli.config import PairsConfig
    from evpcli.pairs import build_pairs as run

    cfg = PairsConfig(frame_cost=frame_cost, window=window, max_pairs_per_sentence=max_pairs_per_sentence)
    s = run(state.ws, progress=state.progress, cfg=cfg, jobs=_jobs(jobs), executor=executor.value,
            ray_address=ray_address)
    _emit(s.to_dict(), as_json, s.summary())


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


@app.command("fit-pose", cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp fit-pose --target me.mp4\n\n"
    "  evp fit-pose --target me.mp4 --preview fit.mp4 --json"))
def fit_pose(
    target: Path = typer.Option(..., help="Target video of the person."),
    preview: Path | None = typer.Option(None, help="Write a video with fitted landmarks and a pose axis drawn."),
    fps: float = typer.Option(25.0, help="Frame rate the target is read at (render reads targets at 25 fps); "
                                         "0 keeps the video's own rate."),
    force: bool = typer.Option(False, help="Fit again even if the workspace has this fit cached."),
    as_json: bool = typer.Option(False, "--json", help="Print the fit summary as JSON."),
) -> None:
    """Track the target's landmarks and fit a 3D face per frame (head pose), cached in the workspace.

    Prints frames, face found %, mean reprojection error (px) and the yaw/pitch/roll ranges (degrees).
    """
    from evpcli.fitpose import fit_pose as run_fit_pose
    from evpcli.fitpose import write_preview

    _require_file(target, "--target")
    if fps < 0:
        raise typer.BadParameter("--fps must be positive (or 0 for the video's own rate)")
    if preview is not None:
        check_output(preview, [target], "--preview", ["--target"])
    result = run_fit_pose(state.ws, target, fps=fps or None, progress=state.progress, force=force)
    summary = result.to_dict()
    if preview is not None:
        summary["preview"] = str(write_preview(result, preview))
    _emit(summary, as_json, result.summary() + (f"; preview {preview}" if preview else ""))


class RendererChoice(str, Enum):
    warp = "warp"
    neural = "neural"


_TARGET_HELP = ("Video of the person (their head motion, body and background are kept), or a still portrait "
                "(png/jpg) for a one-shot render.")


@app.command(cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp render --audio speech.wav --emotion happy --target me.mp4 --out out.mp4\n\n"
    "  evp render --audio speech.wav --emotion-audio angry_line.wav --target me.mp4 --out out.mp4 --json\n\n"
    "  evp render --audio speech.m4a --emotion sad --intensity 1.5 --target portrait.jpg --head-motion --out o.mp4\n\n"
    "  evp render --audio speech.wav --emotion-face laughing_friend.jpg --target me.mp4 --out out.mp4\n\n"
    "  for f in clips/*.wav; do evp -q render --audio \"$f\" --emotion happy --target me.mp4 "
    "--out \"out/$(basename \"$f\" .wav).mp4\" || echo \"failed: $f\"; done"))
def render(
    audio: Path = typer.Option(..., help="Speech to say (any format ffmpeg reads, any rate, mono or stereo)."),
    emotion: str | None = typer.Option(None, help="An emotion name: angry, contempt, disgusted, fear, happy, "
                                       "neutral, sad, surprised."),
    emotion_audio: Path | None = typer.Option(None, help="Or a clip spoken with the wanted emotion (its words do "
                                              "not matter)."),
    emotion_face: Path | None = typer.Option(None, help="Or a photo or video of anyone's face showing the wanted "
                                             "expression (its identity and head pose are not copied)."),
    follow_face: bool = typer.Option(False, "--follow-face", help="With a video --emotion-face: follow its "
                                     "expression over time (stretched over the speech) instead of its average."),
    target: Path = typer.Option(..., help=_TARGET_HELP),
    out: Path = typer.Option(Path("out.mp4"), help="Output mp4 (H.264 + AAC, 25 fps, the target's size); written "
                             "only when complete."),
    intensity: float = typer.Option(1.0, help="Emotion strength: 0 neutral, 1 as given, up to 2 (exaggerated)."),
    renderer: RendererChoice = typer.Option(RendererChoice.warp, help="warp: training-free, any target at once; "
                                            "neural: the target's trained edge-to-video network."),
    head_motion: bool = typer.Option(False, "--head-motion", help="Still-image targets: add gentle natural head "
                                     "motion (otherwise the head stays still)."),
    fps: float = typer.Option(25.0, help="Output frame rate."),
    face: str = typer.Option("largest", help="Which person when the target shows several faces: largest, left, "
                             "right, N (the N-th from the left, from 0) or x,y (a point of the first frame inside "
                             "the face); that person is followed through the video."),
    crf: int = typer.Option(15, help="Video quality: x264's constant rate factor, 0 (lossless) to 51 (smallest)."),
    preset: str = typer.Option("veryfast", help="Encoder speed: ultrafast .. veryslow (slower: smaller files)."),
    model: Path | None = typer.Option(None, "--model", help="An audio-to-landmark model file (.pt) instead of the "
                                      "workspace's newest."),
    landmarks_out: Path | None = typer.Option(None, help="Also write the predicted frontal and adapted landmarks "
                                              "(.npz), for other tools."),
    guidance_out: Path | None = typer.Option(None, help="Also write EVP's guidance maps (landmark sketch + edges "
                                             "outside the face) as an mp4, for inspection."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (out, frames, seconds, emotion, "
                                 "model, time per stage)."),
) -> None:
    """Make a video of the target person saying --audio with the emotion of --emotion, --emotion-audio or
    --emotion-face.

    Only the face changes (the rest of every frame is the target's own); frames where the face is occluded or lost
    pass through. The target's own lasting expression (a smile in a photo) is replaced by the emotion asked for.
    The target's fit is cached in the workspace, so the second render onto it is faster.
    """
    from evpcli.render.pipeline import render as run

    r = run(state.ws, audio, target, out, emotion=emotion, emotion_audio=emotion_audio, emotion_face=emotion_face,
            follow_face=follow_face, intensity=intensity, crf=crf, preset=preset, face=face,
            renderer=renderer.value, head_motion=head_motion, fps=fps, model_path=model, landmarks_out=landmarks_out,
            guidance_out=guidance_out, device=state.device, progress=state.progress)
    _emit(r.to_dict(), as_json, r.summary())


@app.command("batch-render", cls=_Computes, epilog=(
    "Example jobs.csv (paths relative to the CSV's folder; each row fills emotion or emotion_audio):\n\n"
    "\b\n"
    "  audio,emotion,emotion_audio,target,out,intensity\n"
    "  speech/a.wav,happy,,me.mp4,out/a-happy.mp4,\n"
    "  speech/a.wav,,angry_line.wav,me.mp4,out/a-angry.mp4,1.5\n"
    "  speech/b.m4a,sad,,portrait.jpg,out/b-sad.mp4,\n\n"
    "Examples:\n\n"
    "  evp batch-render jobs.csv\n\n"
    "  evp batch-render jobs.csv --jobs 2 --json > batch.json\n\n"
    "  evp batch-render jobs.csv --executor ray --ray-address auto   (-w and the files on a shared folder)"))
def batch_render(
    jobs_csv: Path = typer.Argument(..., help="CSV with a header row: audio, emotion or emotion_audio, target, out "
                                    "(optional intensity 0-2, renderer warp|neural); one render per row."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Renders at once (processes; with --executor ray and no "
                             "--ray-address, the local Ray's CPUs)."),
    executor: ExecutorChoice = typer.Option(ExecutorChoice.local, "--executor", help=_EXECUTOR_HELP),
    ray_address: str | None = typer.Option(None, "--ray-address", help=_RAY_ADDRESS_HELP),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Folder the rows' out paths are relative to "
                                        "(default: the CSV's folder); outputs must stay inside it."),
    allow_outside: bool = typer.Option(False, "--allow-outside", help="Let rows write outside the CSV's folder / "
                                       "--out-dir (../ or absolute out paths)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (rendered, skipped, failed rows "
                                 "with their reasons, outputs)."),
) -> None:
    """Render every row of a jobs CSV (each as `evp render` would), going on past failures.

    Resumable: a row whose out is a finished render is skipped (renders appear only when complete), so re-running
    the CSV does what is missing; anything else at out is never overwritten (that row fails). Outputs stay under the
    CSV's folder (or --out-dir) unless --allow-outside. A bad row (missing file, both or neither emotion, no face in the target) fails that job
    only; the failures are listed at the end by CSV line. Each target is fitted once and cached in the workspace.
    Exit 0 when every job is done, 1 when any failed (or the CSV is unusable), 2 for a usage error.
    """
    from evpcli.render.batch import batch_render as run

    r = run(state.ws, jobs_csv, executor=executor.value, jobs=_jobs(jobs), ray_address=ray_address,
            device=state.device, progress=state.progress, out_dir=out_dir, allow_outside=allow_outside)
    if as_json:
        _emit(r.to_dict(), True)
    elif state.quiet:  # no table, but the failures still reach stderr, one line each (as errors do)
        for f in r.failed:
            print(f"evp: error: {jobs_csv} line {f['line']}: {f['reason']}", file=sys.stderr)
    else:
        if r.failed:
            from rich.table import Table

            t = Table("line", "out", "reason", title=f"{len(r.failed)} job(s) failed", title_justify="left")
            for f in r.failed:
                t.add_row(str(f["line"]), _esc(f["out"]), _esc(f["reason"]))
            state.console.print(t)
        state.console.print(r.summary(), markup=False, highlight=False)
    if r.failed:
        raise typer.Exit(1)


@app.command(cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp interpolate --from sad --to happy --audio speech.wav --target me.mp4 --out ramp.mp4\n\n"
    "  evp interpolate --from sad --to angry_line.wav --alpha 0.5 --audio speech.wav --target me.mp4 --sheet s.png\n\n"
    "  evp interpolate --from neutral --to face:laughing_friend.mp4 --audio speech.wav --target me.mp4"))
def interpolate(
    from_emotion: str = typer.Option(..., "--from", help="Emotion at the start: a name, an emotion clip, or a face "
                                     "(a photo, or face:VIDEO)."),
    to_emotion: str = typer.Option(..., "--to", help="Emotion at the end: a name, an emotion clip, or a face (a "
                                   "photo, or face:VIDEO)."),
    audio: Path = typer.Option(..., help="Speech to say."),
    target: Path = typer.Option(..., help=_TARGET_HELP),
    out: Path = typer.Option(Path("interpolate.mp4"), help="Output mp4."),
    alpha: float | None = typer.Option(None, help="Hold a fixed mix alpha*FROM + (1-alpha)*TO instead of moving "
                                       "from FROM (alpha 1) to TO (alpha 0) over the clip."),
    sheet: Path | None = typer.Option(None, help="Also write a contact sheet PNG: one row per alpha step, one column "
                                      "per moment of the speech."),
    intensity: float = typer.Option(1.0, help="Emotion strength of both ends (0-2)."),
    renderer: RendererChoice = typer.Option(RendererChoice.warp, help="warp or neural (see `evp render`)."),
    head_motion: bool = typer.Option(False, "--head-motion", help="Still-image targets: gentle natural head motion."),
    fps: float = typer.Option(25.0, help="Output frame rate."),
    face: str = typer.Option("largest", help="Which person when the target shows several faces: largest, left, "
                             "right, N (the N-th from the left, from 0) or x,y (a point of the first frame inside "
                             "the face); that person is followed through the video."),
    crf: int = typer.Option(15, help="Video quality: x264's constant rate factor, 0 (lossless) to 51 (smallest)."),
    preset: str = typer.Option("veryfast", help="Encoder speed: ultrafast .. veryslow (slower: smaller files)."),
    model: Path | None = typer.Option(None, "--model", help="An audio-to-landmark model file (.pt)."),
    landmarks_out: Path | None = typer.Option(None, help="Also write the landmarks (.npz)."),
    guidance_out: Path | None = typer.Option(None, help="Also write the guidance maps (.mp4)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Render with the emotion moving from --from to --to over the clip (EVP's emotion editing:
    alpha*E_from + (1-alpha)*E_to), or held at --alpha."""
    from evpcli.render.pipeline import interpolate as run

    r = run(state.ws, audio, target, out, from_emotion, to_emotion, alpha=alpha, intensity=intensity, crf=crf,
            preset=preset, face=face,
            renderer=renderer.value, head_motion=head_motion, fps=fps, model_path=model, landmarks_out=landmarks_out,
            guidance_out=guidance_out, sheet=sheet, device=state.device, progress=state.progress)
    _emit(r.to_dict(), as_json, r.summary())


@app.command(cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp evaluate\n\n"
    "  evp evaluate --ablations --json > metrics.json"))
def evaluate(
    ablations: bool = typer.Option(False, help="Also evaluate models trained with each loss turned off (train them "
                                   "with `evp train --stage disentangle --ablate X` then `--stage audio2lm --ablate X`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Landmark metrics (M-LD, M-LVD, F-LD, F-LVD), emotion accuracy and mouth-opening correlation on held-out clips.

    Held-out clips are those of the sentences the disentanglement model held out. Distances are in pixels of the
    256x256 canonical frame. An energy baseline (the actor's reference face with the mouth opened by audio
    energy) is measured on the same clips. Results are also written to the workspace (runs/evaluate-*.json).
    """
    from evpcli.evaluate import evaluate_workspace

    r = evaluate_workspace(state.ws, ablations=ablations, device=state.device, progress=state.progress)
    _emit(r.to_dict(), as_json, r.summary())


@app.command("preview-landmarks", cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp preview-landmarks --audio speech.wav --emotion happy --out lm.mp4\n\n"
    "  evp preview-landmarks --audio speech.wav --emotion-audio angry_line.wav --actor M003 --out lm.mp4"))
def preview_landmarks(
    audio: Path = typer.Option(..., help="Speech to say."),
    emotion: str | None = typer.Option(None, help="Emotion name: angry, contempt, disgusted, fear, happy, neutral, "
                                       "sad, surprised."),
    emotion_audio: Path | None = typer.Option(None, help="Or a clip spoken with the wanted emotion."),
    actor: str | None = typer.Option(None, help="Whose face (identity) to use; default the workspace's first actor."),
    out: Path = typer.Option(Path("landmarks.mp4"), help="Output mp4: the landmark sketch (256x256) with the speech."),
    model: Path | None = typer.Option(None, "--model", help="An audio-to-landmark model file (.pt) to use instead of "
                                      "the workspace's newest one."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Draw the landmark motion predicted from speech and an emotion, without a target video."""
    from evpcli.render.preview import preview_landmarks as run

    _require_file(audio, "--audio")
    if emotion_audio is not None:
        _require_file(emotion_audio, "--emotion-audio")
    check_output(out, [audio, emotion_audio], "--out", ["--audio", "--emotion-audio"])
    r = run(state.ws, audio, out, emotion=emotion, emotion_audio=emotion_audio, actor=actor, device=state.device,
            model_path=model)
    _emit(r.to_dict(), as_json, r.summary())


@app.command(cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp demo                                  (writes ./evp-demo; open evp-demo/index.html)\n\n"
    "  evp demo my-demo --emotions happy,sad --json"))
def demo(
    out: Path = typer.Argument(Path("evp-demo"), help="Folder to write the demo into."),
    emotions: str = typer.Option("all", help="Comma-separated emotions to render, or 'all' (eight)."),
    model: Path | None = typer.Option(None, "--model", help="An audio-to-landmark model file (.pt) instead of the "
                                      "shipped default."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (every file written)."),
) -> None:
    """Show what evp does, with nothing but the installed package: makes a speech clip and a target, renders one
    video per emotion, one onto a still photo with head motion, an interpolation sad -> happy, a contact sheet and
    an index.html that shows them side by side. Uses the shipped default models and a temporary workspace inside
    OUT (--workspace is not used); about a minute on a CPU.
    """
    from evpcli.demo import parse_emotions, run_demo

    if model is not None:
        _require_file(model, "--model")
    r = run_demo(out, parse_emotions(emotions), model_path=model, device=state.device, progress=state.progress)
    if as_json:
        _emit({**r.to_dict(), "files": r.files}, True)
    elif not state.quiet:  # what was made and where: the command's output, on stdout
        print(r.summary())


@app.command(cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp ui                         (then open the address it prints)\n\n"
    "  evp ui --port 8000 -w my-workspace"))
def ui(
    host: str = typer.Option("127.0.0.1", help="Address to listen on. The default serves this machine only; "
                             "0.0.0.0 would let the whole network use it."),
    port: int = typer.Option(7860, help="Port (0: any free one)."),
    max_upload_mb: float = typer.Option(500.0, help="Largest file the page may upload, in MB."),
) -> None:
    """A local web page to make emotional videos: drop in a video or photo and speech, pick an emotion, watch.

    It runs the same render and interpolate as the CLI, one request at a time (others queue), with the model
    loaded once; uploads and results stay in a temporary folder removed when the server stops (Ctrl-C). Nothing
    is sent anywhere: no telemetry, no share links, no downloads.
    """
    from evpcli.ui import Server

    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    if max_upload_mb <= 0:
        raise UsageError(f"--max-upload-mb must be positive, got {max_upload_mb:g}")
    try:
        server = Server(state.workspace, host=host, port=port, device=state.device, max_upload_mb=max_upload_mb)
    except OSError as exc:
        raise EvpError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port") from None
    print(f"evp ui: open {server.url} in a browser (Ctrl-C to stop)", flush=True)
    server.serve_forever()


# --------------------------------------------------------------------------- entry point
INTERRUPTED = ("evp: interrupted; the workspace is consistent and a re-run resumes (training: with --resume; until "
               "then the previous finished model stays in use)")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (``evp`` exits with it). SIGTERM stops a run as Ctrl-C does (130)."""
    from evpcli.workers import handle_sigterm_like_sigint

    previous = handle_sigterm_like_sigint()
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_GLOBAL_WITH_VALUE = ("-w", "--workspace", "--device")
_MOVABLE = ("-w", "--workspace", "-v", "--verbose", "-q", "--quiet")  # no subcommand has options of these names


def global_options_first(argv: list[str]) -> list[str]:
    """Move the global options -w/--workspace, -v, -q and --device (but train's own) found after the subcommand to
    before it, so that ``evp status -w ws`` means ``evp -w ws status`` and ``evp render --device cpu ...`` means
    ``evp --device cpu render ...`` (click only reads a group's options before the subcommand)."""
    args = list(argv)
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":  # up to the subcommand
        i += 2 if args[i] in _GLOBAL_WITH_VALUE else 1
    if i >= len(args) or args[i] == "--":
        return args
    head, sub, rest = args[:i], args[i], args[i + 1:]
    moved, kept = [], []
    j = 0
    while j < len(rest):
        a = rest[j]
        if a == "--":
            kept.extend(rest[j:])
            break
        if a in ("-w", "--workspace") and j + 1 < len(rest):
            moved += rest[j:j + 2]
            j += 2
            continue
        if sub != "train" and a == "--device" and j + 1 < len(rest):  # train has its own --device
            moved += rest[j:j + 2]
            j += 2
            continue
        if sub != "train" and a.startswith("--device="):
            moved.append(a)
            j += 1
            continue
        if a in _MOVABLE or a.startswith("--workspace=") or (a.startswith("-w") and not a.startswith("--")):
            moved.append(a)
        else:
            kept.append(a)
        j += 1
    return head + moved + [sub] + kept


def _main(argv: list[str] | None) -> int:
    try:
        argv = global_options_first(sys.argv[1:] if argv is None else argv)
        rv = app(args=argv, prog_name="evp", standalone_mode=False)
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except EvpError as exc:
        if state.verbose:
            traceback.print_exc()
        print(f"evp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors (bad option, missing arg)
            exc.show()
            return exc.exit_code
        if state.verbose:  # a bug: still one line unless -v
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"evp: internal error: {type(exc).__name__}: {first} (run with -v for the traceback)", file=sys.stderr)
        return 1
    if code == 130:  # Typer turns Ctrl-C into exit code 130 outside standalone mode
        print(INTERRUPTED, file=sys.stderr)
    return code


def entry() -> None:
    sys.exit(main())
