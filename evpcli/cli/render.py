"""``evp fit-pose``, ``render``, ``batch-render``, ``interpolate``: a target and the videos made of it."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from evpcli.cli.app import (app, _Computes, _emit, _esc, _EXECUTOR_HELP, ExecutorChoice, _jobs, _RAY_ADDRESS_HELP,
                            _require_file, state)
from evpcli.config import FPS
from evpcli.paths import check_output


@app.command("fit-pose", cls=_Computes, epilog=(
    "Examples:\n\n"
    "  evp fit-pose --target me.mp4\n\n"
    "  evp fit-pose --target me.mp4 --preview fit.mp4 --json"))
def fit_pose(
    target: Path = typer.Option(..., help="Target video of the person."),
    preview: Path | None = typer.Option(None, help="Write a video with fitted landmarks and a pose axis drawn."),
    fps: float = typer.Option(FPS, help="Frame rate the target is read at (render reads targets at 25 fps); "
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
    fps: float = typer.Option(FPS, help="Output frame rate."),
    face: str = typer.Option("largest", help="Which person when the target shows several faces: largest, left, "
                             "right, N (the N-th from the left, from 0) or x,y (a point of the first frame inside "
                             "the face); that person is followed through the video."),
    crf: int | None = typer.Option(None, help="Video quality: x264's constant rate factor, 0 (lossless) to 51 "
                                   "(smallest). Default: 12 from 320x240 up, 10 below (small frames lose the "
                                   "face's detail first); 15 or more for smaller files."),
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
    CSV's folder (or --out-dir) unless --allow-outside. A bad row (missing file, both or neither emotion, no face in
    the target) fails that job only; the failures are listed at the end by CSV line. Each target is fitted once and
    cached in the workspace.
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
    fps: float = typer.Option(FPS, help="Output frame rate."),
    face: str = typer.Option("largest", help="Which person when the target shows several faces: largest, left, "
                             "right, N (the N-th from the left, from 0) or x,y (a point of the first frame inside "
                             "the face); that person is followed through the video."),
    crf: int | None = typer.Option(None, help="Video quality: x264's constant rate factor, 0 (lossless) to 51 "
                                   "(smallest). Default: 12 from 320x240 up, 10 below (small frames lose the "
                                   "face's detail first); 15 or more for smaller files."),
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
