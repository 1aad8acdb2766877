"""``evp status``, ``synth-corpus``, ``prepare-dataset``, ``build-pairs``: the workspace and its data."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console

from evpcli.cli.app import (app, _Command, _Computes, _emit, _esc, _EXECUTOR_HELP, ExecutorChoice, _jobs,
                            _RAY_ADDRESS_HELP, _require_file, state)
from evpcli.errors import EvpError
from evpcli.paths import check_output, check_output_dir
from evpcli.workspace import Workspace


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


@app.command("build-pairs", cls=_Computes, epilog="Examples:\n\n  evp build-pairs"
             "\n\n  evp build-pairs --max-pairs-per-sentence 20 --json"
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
