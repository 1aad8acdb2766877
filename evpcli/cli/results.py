"""``evp evaluate``, ``preview-landmarks``, ``demo``, ``ui``: measuring and looking at the results."""

from __future__ import annotations

from pathlib import Path

import typer

from evpcli.cli.app import app, _Computes, _emit, _require_file, state
from evpcli.errors import EvpError, UsageError
from evpcli.paths import check_output


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
    import signal

    # started as a script's background job, the process inherits SIGINT ignored and Python then never raises
    # KeyboardInterrupt: Ctrl-C (kill -INT) must still stop the server and remove its folder
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"evp ui: open {server.url} in a browser (Ctrl-C to stop)", flush=True)
    server.serve_forever()
