"""``evp demo``: from the installed package to emotional videos in one command, with the shipped default models.

Nothing is needed but the package: the demo makes its own inputs, renders with the models that ship inside the
package (or ``--model``), and writes a page that shows the results side by side.

1. Inputs (``OUT/inputs/``): a Harvard sentence spoken by espeak-ng in a voice and a sentence the default models
   never trained on (``speech.wav``, about 3 s); a short synthetic talking video of the packaged portrait
   (``target.mp4``, :func:`evpcli.corpus.synth.make_clip`); the still portrait (``portrait.png``).
2. One video per emotion onto the video target (``OUT/emotions/<emotion>.mp4``), each with the emotion the
   landmark emotion classifier reads from the predicted landmarks.
3. One video onto the still portrait with gentle head motion (``OUT/still-<emotion>.mp4``).
4. An interpolation sad -> happy (``OUT/interpolate-sad-to-happy.mp4``).
5. A contact sheet, emotions x time (``OUT/sheet.png``), and ``OUT/index.html`` with every video side by side.

The work happens in a temporary workspace inside OUT, removed at the end.
"""

from __future__ import annotations

import html
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evpcli.config import EMOTIONS
from evpcli.errors import EvpError
from evpcli.progress import Progress

SPEECH_SENTENCE = 13  # "Help the woman get back to her feet." (the default recipe trains on the first 12)
SPEECH_ACTOR = 2  # its voice: espeak-ng en+m1 (the default recipe's two actors speak with en+m3 and en+f2)
TARGET_ACTOR = 0  # the target's face: the packaged portrait as the synthetic corpus's first actor
TARGET_SENTENCE = 15  # what the target says in its own video: "Smoky fires lack flame and heat."
INTERPOLATE = ("sad", "happy")


@dataclass
class DemoResult:
    out: str
    index_html: str
    sheet: str
    inputs: dict[str, str]
    videos: list[dict]  # {"path", "kind" (emotion | still | interpolation), "emotion", "reads", "probability"}
    model: dict
    seconds: float
    stage_seconds: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def files(self) -> list[str]:
        return [self.index_html, self.sheet, *self.inputs.values(), *(v["path"] for v in self.videos)]

    def summary(self) -> str:
        lines = [f"wrote {len(self.videos)} videos, a contact sheet and a page to {self.out} in {self.seconds:.0f} s "
                 f"(model {self.model['key']}, {self.model['origin']})"]
        for v in self.videos:
            read = f"; the landmarks read as {v['reads']} (p = {v['probability']:.2f})" if v.get("reads") else ""
            lines.append(f"  {v['path']}: {v['title']}{read}")
        lines.append(f"  {self.sheet}: contact sheet (emotions x time)")
        lines.append(f"open {self.index_html} in a browser to see them side by side")
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def parse_emotions(value: str | None) -> list[str]:
    """'all' or None -> the eight emotions; else a comma-separated list of names."""
    if value is None or value.strip().lower() == "all":
        return list(EMOTIONS)
    names = [e.strip().lower() for e in value.split(",") if e.strip()]
    bad = [e for e in names if e not in EMOTIONS]
    if bad or not names:
        raise EvpError(f"unknown emotion(s) {', '.join(bad) or repr(value)}; use names among {', '.join(EMOTIONS)} "
                       "or 'all'")
    return list(dict.fromkeys(names))


def make_inputs(folder: Path, size: int = 256) -> dict[str, Path]:
    """The demo's inputs in ``folder``: speech.wav, target.mp4 (a synthetic talking video of the portrait) and
    portrait.png."""
    import cv2

    from evpcli import media
    from evpcli.corpus.synth import make_actor, make_clip, make_speech

    folder.mkdir(parents=True, exist_ok=True)
    speech = make_speech(SPEECH_ACTOR, "neutral", 1, SPEECH_SENTENCE).wav
    clip = make_clip(TARGET_ACTOR, "neutral", 1, TARGET_SENTENCE, size=size)
    paths = {"speech": folder / "speech.wav", "target": folder / "target.mp4", "portrait": folder / "portrait.png"}
    media.save_wav(paths["speech"], speech)
    media.write_video(paths["target"], clip.frames, fps=clip.fps, audio=clip.wav)
    if not cv2.imwrite(str(paths["portrait"]), cv2.cvtColor(make_actor(TARGET_ACTOR, size).image, cv2.COLOR_RGB2BGR)):
        raise EvpError(f"{paths['portrait']}: could not write the portrait")
    return paths


DEMO_MARKER = ".evp-demo"  # written into a demo folder: a later evp demo may write over it, over nothing else


def run_demo(out: str | Path = "evp-demo", emotions: list[str] | None = None, model_path: str | Path | None = None,
             device: str = "auto", size: int = 256, progress: Progress | None = None) -> DemoResult:
    """Make the inputs, render every video, the contact sheet and index.html into ``out`` (see the module doc)."""
    from evpcli.infer import emotion_code, landmark_emotion
    from evpcli.models import load_audio2lm, load_landmark_emotion
    from evpcli.paths import check_output_dir
    from evpcli.render.pipeline import emotion_sheet, interpolate, prepare_target, render
    from evpcli.workspace import Workspace, load_npz

    t_start = time.perf_counter()
    progress = progress or Progress()
    emotions = list(emotions or EMOTIONS)
    out = Path(out)
    check_output_dir(out, option="OUT")
    marker = out / DEMO_MARKER
    if out.is_dir() and any(out.iterdir()) and not marker.exists():
        raise EvpError(f"{out} already holds files that evp demo did not write (it would overwrite index.html, "
                       "inputs/, emotions/ ...); give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("a folder written by evp demo: a later evp demo may overwrite it\n")
    still_emotion = "happy" if "happy" in emotions else emotions[0]
    times: dict[str, float] = {}
    videos: list[dict] = []
    warnings: list[str] = []
    ws_dir = Path(tempfile.mkdtemp(prefix=".workspace-", dir=out))
    lm_dir = Path(tempfile.mkdtemp(prefix=".landmarks-", dir=out))
    try:
        ws = Workspace(ws_dir)
        model = load_audio2lm(ws, path=model_path, device=device, backend="auto")
        missing = [e for e in {*emotions, *INTERPOLATE} if e not in model.emotion_means]
        if missing:
            raise EvpError(f"the model was trained without {', '.join(sorted(missing))} clips; choose --emotions among "
                           f"{', '.join(sorted(model.emotion_means))}")
        classifier = load_landmark_emotion(ws, device=device)
        total = 2 + len(emotions) + 3
        with progress.task("demo", total=total, unit="steps") as bar:
            t0 = time.perf_counter()
            bar.update(step="making the inputs")
            inputs = make_inputs(out / "inputs", size)
            times["inputs"] = time.perf_counter() - t0
            bar.advance(1, step="fitting the target")

            t0 = time.perf_counter()
            target = prepare_target(ws, inputs["target"])
            times["target"] = time.perf_counter() - t0
            bar.advance(1)

            t0 = time.perf_counter()
            lm_tmp = lm_dir / "landmarks.npz"  # not inside the workspace (no output may land there)
            for e in emotions:
                bar.update(step=f"rendering {e}")
                r = render(ws, inputs["speech"], inputs["target"], out / "emotions" / f"{e}.mp4", emotion=e,
                           model_path=model_path, landmarks_out=lm_tmp, device=device)
                reads, p = landmark_emotion(classifier, load_npz(lm_tmp)["frontal"], target.reference)
                videos.append({"path": r.out, "kind": "emotion", "emotion": e, "title": e, "reads": reads,
                               "probability": round(p, 3)})
                warnings += [w for w in r.warnings if w not in warnings]
                bar.advance(1)
            times["emotions"] = time.perf_counter() - t0

            t0 = time.perf_counter()
            bar.update(step="rendering onto the still portrait")
            r = render(ws, inputs["speech"], inputs["portrait"], out / f"still-{still_emotion}.mp4",
                       emotion=still_emotion, head_motion=True, model_path=model_path, device=device)
            videos.append({"path": r.out, "kind": "still", "emotion": still_emotion,
                           "title": f"{still_emotion}, one photo, --head-motion", "reads": None, "probability": None})
            times["still"] = time.perf_counter() - t0
            bar.advance(1, step="interpolating")

            t0 = time.perf_counter()
            a, b = INTERPOLATE
            r = interpolate(ws, inputs["speech"], inputs["target"], out / f"interpolate-{a}-to-{b}.mp4", a, b,
                            model_path=model_path, device=device)
            videos.append({"path": r.out, "kind": "interpolation", "emotion": f"{a} -> {b}",
                           "title": f"{a} -> {b} (interpolated over the clip)", "reads": None, "probability": None})
            times["interpolate"] = time.perf_counter() - t0
            bar.advance(1, step="contact sheet")

            t0 = time.perf_counter()
            sheet = emotion_sheet(ws, inputs["speech"], inputs["target"], out / "sheet.png",
                                  [(e, emotion_code(model, e).code) for e in emotions], model_path=model_path,
                                  device=device)
            times["sheet"] = time.perf_counter() - t0
            index = write_index(out, {k: str(v) for k, v in inputs.items()}, videos, str(sheet), model.source.to_dict())
            bar.advance(1)
    finally:
        shutil.rmtree(ws_dir, ignore_errors=True)
        shutil.rmtree(lm_dir, ignore_errors=True)
    return DemoResult(str(out), str(index), str(sheet), {k: str(v) for k, v in inputs.items()}, videos,
                      model.source.to_dict(), time.perf_counter() - t_start, {k: round(v, 2) for k, v in times.items()},
                      warnings)


# --------------------------------------------------------------------------- the page
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222;max-width:1400px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
video,img.sheet{width:100%;border-radius:4px;background:#000}figcaption{font-size:.92em;margin-top:4px}
.read{color:#666;font-size:.85em}code{background:#eee;padding:1px 4px;border-radius:3px}
button{font-size:1em;padding:.4em 1em;margin:.5em 0}"""

_SCRIPT = """function playAll(){const v=[...document.querySelectorAll('video.sync')];
v.forEach((x,i)=>{x.currentTime=0;x.muted=i>0;x.play();});}"""


def _rel(path: str, out: Path) -> str:
    return html.escape(Path(path).resolve().relative_to(out.resolve()).as_posix(), quote=True)


def _figure(path: str, out: Path, title: str, note: str = "", sync: bool = True) -> str:
    cls = ' class="sync"' if sync else ""
    note_html = f'<br><span class="read">{html.escape(note)}</span>' if note else ""
    # "#t=1.2": the thumbnail shows a moment of speech, where the emotions differ (the first frame is the same
    # target frame in every video)
    return (f'<figure><video{cls} src="{_rel(path, out)}#t=1.2" controls preload="auto" playsinline></video>'
            f"<figcaption><b>{html.escape(title)}</b>{note_html}</figcaption></figure>")


def write_index(out: Path, inputs: dict[str, str], videos: list[dict], sheet: str, model: dict) -> Path:
    """OUT/index.html: every video side by side (HTML5 <video>, paths relative to OUT), the inputs, the contact
    sheet, and which model made them."""
    from evpcli.models import shipped_manifest

    out = Path(out)
    emotion_figs = "\n".join(
        _figure(v["path"], out, v["title"], f"the landmark emotion classifier reads {v['reads']} "
                                             f"(p = {v['probability']:.2f})" if v.get("reads") else "")
        for v in videos if v["kind"] == "emotion")
    other_figs = "\n".join(_figure(v["path"], out, v["title"]) for v in videos if v["kind"] != "emotion")
    about = f"model {model['key']} ({model['origin']}: {Path(model['path']).name})"
    speech_note = "espeak-ng"
    if model["origin"] == "shipped":
        manifest = shipped_manifest() or {}
        if manifest.get("trained_on"):
            about += f", trained on {manifest['trained_on']}"
        corpus = manifest.get("corpus") or {}
        if corpus.get("generator") == "evp synth-corpus" and corpus.get("sentences", 99) <= SPEECH_SENTENCE \
                and corpus.get("actors", 99) <= SPEECH_ACTOR:
            speech_note = "espeak-ng; a sentence and a voice the models never trained on"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>evp demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style>
<script>{_SCRIPT}</script></head>
<body>
<h1>evp demo: one sentence, eight emotions</h1>
<p>Each video is the target person saying the same speech (<code>inputs/speech.wav</code>, {html.escape(speech_note)})
with the emotion named under it; only the face changes. Made by <code>evp demo</code>.</p>
<button onclick="playAll()">play all together</button> (sound from the first)
<h2>Emotions</h2>
<div class="grid">
{emotion_figs}
</div>
<h2>A still photo, and an emotion that changes</h2>
<div class="grid">
{other_figs}
</div>
<h2>Contact sheet: emotions &times; time</h2>
<img class="sheet" src="{_rel(sheet, out)}" alt="contact sheet: one row per emotion, one column per moment">
<h2>Inputs</h2>
<div class="grid">
<figure><audio src="{_rel(inputs['speech'], out)}" controls preload="metadata"></audio>
<figcaption><b>speech</b> (espeak-ng)</figcaption></figure>
{_figure(inputs['target'], out, "target video (its own speech and mouth)", sync=False)}
<figure><img class="sheet" src="{_rel(inputs['portrait'], out)}" alt="the still portrait"><figcaption><b>still
portrait</b></figcaption></figure>
</div>
<p class="read">{html.escape(about.replace("`", ""))}</p>
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
