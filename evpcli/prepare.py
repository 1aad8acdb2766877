"""Stage 1, ``evp prepare-dataset``: a dataset's clips -> cached MFCCs and tracked landmarks in the workspace.

:func:`prepare_dataset` reads a MEAD-layout folder (:mod:`evpcli.corpus.mead`) or a manifest CSV
(:mod:`evpcli.corpus.manifest`), and for every clip writes two artifacts and one index row:

- kind ``"mfcc"``: npz ``mfcc`` (N, 12) float32 (:func:`evpcli.audio.mfcc` of the clip's 16 kHz audio, padded
  120 ms each side), ``rms`` (T,) float32 (audio RMS under each video frame), ``n_frames`` () int64 (T);
- kind ``"landmarks"``: npz ``landmarks`` (T, 68, 2) float32 pixels (smoothed, gaps filled), ``raw`` (T, 68, 2)
  (not smoothed), ``detected`` (T,) bool, ``valid`` (T,) bool, ``normalised`` (T, 68, 2) float32 (256x256
  template frame), ``transforms`` (T, 2, 3) float32 (source pixels -> template pixels), ``fps`` () float64 (25);

T is the number of video frames at 25 fps. Both are read back with ``ws.load_clip_feature(kind, clip_id)``.
Their keys are ``cache_key(video_hash, audio_hash, params={clip id, configs})`` (the landmark key leaves the
audio out), so a re-run finds them and skips the clip; changing a config makes new ones. Then, per actor, kind
``"actors"`` with key = the actor's name: npz ``reference`` (68, 2), ``pca_mean`` (136,), ``pca_components``
(16, 136), ``pca_variance`` (16,) (see :func:`evpcli.face.normalize.actor_model`); :func:`load_actor` reads it.

Clips that cannot be prepared (unreadable video, no face, audio and video lengths differing by more than
``max_av_mismatch`` seconds, unknown emotion, ...) are indexed with ``status="failed"`` and the reason, listed in
the :class:`PrepareReport` and in ``<workspace>/prepare-report.json``; the run goes on. Workers are processes
(``jobs``); the index is written by the parent only, after each clip's files are complete, so an interrupted
run leaves a consistent workspace and a re-run resumes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evpcli.config import AudioConfig, LandmarkConfig
from evpcli.errors import EvpError
from evpcli.progress import Progress
from evpcli.workspace import (KIND_ACTOR, KIND_LANDMARKS, KIND_MFCC, ClipRecord, Workspace, cache_key, hash_file,
                              load_npz, save_json, save_npz)

FPS = 25.0
FORMAT_VERSION = 1  # bump when the artifacts' content changes without a config change
REPORT_NAME = "prepare-report.json"


@dataclass
class PrepareReport:
    """What a run did. ``failed``: one dict per skipped clip (``clip_id``, ``video``, ``reason``)."""

    source: str
    layout: str
    total: int = 0  # clips found
    prepared: int = 0  # computed in this run
    cached: int = 0  # already in the workspace with the same inputs and parameters
    failed: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    actors: dict[str, int] = field(default_factory=dict)  # ready clips per actor
    actor_models: list[str] = field(default_factory=list)  # actors whose reference/PCA was (re)computed
    frames: int = 0  # video frames tracked in this run
    seconds: float = 0.0
    interrupted: bool = False
    report_path: str = ""

    @property
    def ok(self) -> int:
        """Clips ready in the workspace (prepared now or before)."""
        return self.prepared + self.cached

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        """One human line (the skipped clips' reasons are a table the CLI prints from ``failed``)."""
        rate = f", {self.prepared / self.seconds:.2f} clips/s" if self.prepared and self.seconds > 0 else ""
        return (f"{self.ok} of {self.total} clips ready ({self.prepared} prepared now, {self.cached} cached, "
                f"{len(self.failed)} skipped) in {self.seconds:.1f} s{rate}; actors: "
                f"{', '.join(f'{a} ({n})' for a, n in sorted(self.actors.items())) or 'none'}; "
                f"report: {self.report_path}")


def _params(landmark_config: LandmarkConfig, audio_config: AudioConfig) -> tuple[dict, dict]:
    mfcc_params = {"audio": asdict(audio_config), "fps": FPS, "version": FORMAT_VERSION}
    lm_params = {"landmarks": asdict(landmark_config), "fps": FPS, "version": FORMAT_VERSION}
    return mfcc_params, lm_params


def _artifact_name(clip_id: str, key: str) -> str:
    return f"{clip_id.replace('/', '-')}-{key}.npz"


# ------------------------------------------------------------------ the per-clip work (runs in workers)
def prepare_clip(job: dict) -> dict:
    """Compute and write one clip's MFCC and landmark files. ``job``: paths, keys and configs (plain data, so
    it pickles to a worker). Returns ``{clip_id, status, message, n_frames, fps, seconds, detected, valid}``;
    never raises for bad input (the reason goes in ``message``)."""
    from evpcli import audio as audio_fe
    from evpcli import media
    from evpcli.errors import MediaError
    from evpcli.face.landmarks import NoFaceError, track_video
    from evpcli.face.normalize import normalise

    t0 = time.perf_counter()
    out = {"clip_id": job["clip_id"], "status": "failed", "message": "", "n_frames": 0, "fps": FPS}
    video, audio_path = job["video"], job["audio"]
    acfg = AudioConfig(**job["audio_config"])
    lcfg = LandmarkConfig(**job["landmark_config"])
    try:
        info = media.probe(video)
        if audio_path:
            wav = media.load_audio(audio_path)
        else:
            try:
                wav = media.extract_audio(video)
            except MediaError as exc:
                if "no audio track" not in str(exc):
                    raise MediaError(f"{video}: corrupt or truncated video (its audio track cannot be decoded)") from None
                raise MediaError(f"{Path(video).name} has no audio track and no audio file was given (MEAD: "
                                 "<actor>/audio/<emotion>/level_<k>/<NNN>.m4a; manifest: the audio column)") from None
        n_counted = [0]

        def frames():
            for f in media.iter_frames(video, fps=FPS):
                n_counted[0] += 1
                yield f

        expected = info.duration * FPS

        def check_length(n: int) -> None:
            if n == 0 or (expected > 0 and n < 0.9 * expected - 1):
                raise MediaError(f"{video}: truncated or corrupt video (decoded {n} of about {round(expected)} frames)")

        try:
            track = track_video(frames(), lcfg)
        except NoFaceError:
            check_length(n_counted[0])  # a broken file is the better explanation
            raise
        n = track.n_frames
        check_length(n)
        gap = abs(n / FPS - len(wav) / acfg.sample_rate)
        if gap > job["max_av_mismatch"]:
            raise EvpError(f"audio ({len(wav) / acfg.sample_rate:.2f} s) and video ({n / FPS:.2f} s) lengths differ "
                           f"by {gap:.2f} s (more than {job['max_av_mismatch']} s)")
        m = audio_fe.mfcc(wav, acfg)
        rms = audio_fe.frame_rms(wav, n, FPS, acfg)
        normalised, transforms = normalise(track.landmarks)
        save_npz(job["mfcc_path"], mfcc=m, rms=rms, n_frames=np.int64(n))
        save_npz(job["landmarks_path"], landmarks=track.landmarks, raw=track.raw, detected=track.detected,
                 valid=track.valid, normalised=normalised, transforms=transforms, fps=np.float64(FPS))
        out.update(status="ok", n_frames=n, detected=float(track.detected.mean()), valid=float(track.valid.mean()),
                   n_detections=track.n_detections)
        long_gaps = int((~track.valid).sum())
        if long_gaps:
            out["message"] = f"{long_gaps} frame(s) in long gaps without a face (valid=False)"
    except NoFaceError as exc:
        out["message"] = str(exc)
    except EvpError as exc:  # MediaError included
        out["message"] = str(exc)
    except Exception as exc:  # a bug or an odd file: the run goes on, the report shows it
        out["message"] = f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    out["seconds"] = time.perf_counter() - t0
    return out


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


# ------------------------------------------------------------------ the stage
def _stat(path: str) -> list:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _scan(source: Path, layout: str, view: str, actors, emotions, sentence_map) -> tuple[list[ClipRecord], list[str]]:
    if layout == "mead":
        from evpcli.corpus.mead import scan_mead

        return scan_mead(source, view=view, actors=actors, emotions=emotions, sentence_map=sentence_map)
    if layout == "manifest":
        from evpcli.corpus.manifest import read_manifest

        records, warnings = read_manifest(source)
        if actors or emotions:
            from evpcli.corpus.mead import _split

            keep_a, keep_e = _split(actors), _split(emotions)
            records = [r for r in records if (not keep_a or r.actor in keep_a) and (not keep_e or r.emotion in keep_e)]
        return records, warnings
    raise EvpError(f"unknown layout {layout!r} (mead or manifest)")


def prepare_dataset(ws: Workspace, source: str | os.PathLike, layout: str = "mead", *, view: str = "front",
                    actors: str | list[str] | None = None, emotions: str | list[str] | None = None,
                    sentence_map: str | os.PathLike | None = None, jobs: int = 1,
                    landmark_config: LandmarkConfig | None = None, audio_config: AudioConfig | None = None,
                    max_av_mismatch: float = 0.5, progress: Progress | None = None) -> PrepareReport:
    """Prepare every clip of ``source`` (see the module docstring); returns the run's :class:`PrepareReport`,
    also written to ``<workspace>/prepare-report.json``. Raises :class:`EvpError` for a bad source (missing
    folder, manifest without the required columns); per-clip problems go into the report instead.
    A KeyboardInterrupt stops the workers, writes the report (``interrupted: true``) and is re-raised.
    """
    t_start = time.perf_counter()
    lcfg = landmark_config or LandmarkConfig()
    acfg = audio_config or AudioConfig()
    progress = progress or Progress()
    source = Path(source)
    records, warnings = _scan(source, layout, view, actors, emotions, sentence_map)
    report = PrepareReport(source=str(source), layout=layout, total=len(records), warnings=list(warnings))
    report.report_path = str(ws.root / REPORT_NAME)
    mfcc_params, lm_params = _params(lcfg, acfg)

    known = {c.clip_id: c for c in ws.clips(status=None)}
    have = {(a["kind"], a["key"]): a for k in (KIND_MFCC, KIND_LANDMARKS) for a in ws.artifacts(k)}
    todo: list[tuple[ClipRecord, dict]] = []
    to_index: list[ClipRecord] = []

    def fail(rec: ClipRecord, reason: str) -> None:
        rec.status, rec.message = "failed", reason
        report.failed.append({"clip_id": rec.clip_id, "video": rec.video, "reason": reason})

    for rec in records:
        if rec.status == "failed":  # refused while reading the layout (unknown emotion, bad level, ...)
            fail(rec, rec.message)
            to_index.append(rec)
            continue
        old = known.get(rec.clip_id)
        try:
            vstat = _stat(rec.video)
            astat = _stat(rec.audio) if rec.audio else None
        except OSError:
            fail(rec, f"{rec.video if not Path(rec.video).exists() else rec.audio}: file not found")
            to_index.append(rec)
            continue
        same_files = (old is not None and old.video == rec.video and old.audio == rec.audio
                      and old.extra.get("video_stat") == vstat and old.extra.get("audio_stat") == astat)
        if same_files and old.video_hash:
            rec.video_hash, rec.audio_hash = old.video_hash, old.audio_hash
        else:
            rec.video_hash = hash_file(rec.video)
            rec.audio_hash = hash_file(rec.audio) if rec.audio else rec.video_hash
        mkey = cache_key(rec.video_hash, rec.audio_hash, params={"clip": rec.clip_id, **mfcc_params})
        lkey = cache_key(rec.video_hash, params={"clip": rec.clip_id, **lm_params})
        rec.extra.update(video_stat=vstat, audio_stat=astat, mfcc_key=mkey, landmarks_key=lkey)
        index_same = (old is not None and old.extra.get("mfcc_key") == mkey and old.extra.get("landmarks_key") == lkey
                      and old.sentence == rec.sentence and old.text == rec.text)
        if index_same and old.status == "ok" and (KIND_MFCC, mkey) in have and (KIND_LANDMARKS, lkey) in have:
            report.cached += 1
            report.actors[rec.actor] = report.actors.get(rec.actor, 0) + 1
            continue
        if index_same and old.status == "failed":  # same files, same parameters: it would fail the same way
            fail(rec, old.message)
            continue
        mpath = ws.path(KIND_MFCC, _artifact_name(rec.clip_id, mkey))
        lpath = ws.path(KIND_LANDMARKS, _artifact_name(rec.clip_id, lkey))
        if mpath.exists() and lpath.exists():  # written by a run interrupted before it updated the index
            try:
                lm = load_npz(lpath)
                n = len(lm["landmarks"])
                load_npz(mpath)
                rec.n_frames, rec.fps, rec.status = n, FPS, "ok"
                rec.message = ""
                _register(ws, rec, mkey, lkey, mpath, lpath, mfcc_params, lm_params,
                          {"n_frames": n, "detected": float(lm["detected"].mean()), "valid": float(lm["valid"].mean())})
                report.cached += 1
                report.actors[rec.actor] = report.actors.get(rec.actor, 0) + 1
                continue
            except EvpError:
                pass  # corrupt leftovers: recompute
        todo.append((rec, {"clip_id": rec.clip_id, "video": rec.video, "audio": rec.audio,
                           "mfcc_path": str(mpath), "landmarks_path": str(lpath),
                           "audio_config": asdict(acfg), "landmark_config": asdict(lcfg),
                           "max_av_mismatch": float(max_av_mismatch)}))
    if to_index:
        ws.put_clips(to_index)

    by_id = {rec.clip_id: (rec, job) for rec, job in todo}
    try:
        with _worker_pool(jobs, len(todo)) as pool, \
                (progress if todo else Progress()).task("prepare", total=len(todo), unit="clips") as bar:
            for result in _run(todo, pool):
                rec, job = by_id[result["clip_id"]]
                if result["status"] == "ok":
                    rec.status, rec.message = "ok", result.get("message", "")
                    rec.n_frames, rec.fps = result["n_frames"], result["fps"]
                    _register(ws, rec, rec.extra["mfcc_key"], rec.extra["landmarks_key"], Path(job["mfcc_path"]),
                              Path(job["landmarks_path"]), mfcc_params, lm_params,
                              {k: result[k] for k in ("n_frames", "detected", "valid", "seconds")})
                    report.prepared += 1
                    report.frames += result["n_frames"]
                    report.actors[rec.actor] = report.actors.get(rec.actor, 0) + 1
                else:
                    if result.get("crashed"):  # not the clip's fault: forget the keys so a re-run retries it
                        rec.extra.pop("mfcc_key", None)
                    fail(rec, result["message"])
                    ws.put_clips([rec])
                bar.advance(1)
        report.actor_models = update_actor_models(ws, sorted(report.actors))
    except KeyboardInterrupt:
        report.interrupted = True
        for _, job in todo:  # temp files of clips whose worker was stopped mid-write (hidden, never renamed)
            for key in ("mfcc_path", "landmarks_path"):
                path = Path(job[key])
                for tmp in path.parent.glob(f".{path.name}.*"):
                    tmp.unlink(missing_ok=True)
        raise
    finally:
        report.failed.sort(key=lambda f: f["clip_id"])
        report.seconds = time.perf_counter() - t_start
        save_json(ws.root / REPORT_NAME, report.to_dict())
    return report


def _register(ws: Workspace, rec: ClipRecord, mkey: str, lkey: str, mpath: Path, lpath: Path, mfcc_params: dict,
              lm_params: dict, meta: dict) -> None:
    """Index a clip's two finished artifact files, then the clip itself (in that order: an index row with
    status ok always has its files)."""
    ws.put_artifact(KIND_MFCC, mkey, mpath, clip_id=rec.clip_id, params=mfcc_params, meta=meta)
    ws.put_artifact(KIND_LANDMARKS, lkey, lpath, clip_id=rec.clip_id, params=lm_params, meta=meta)
    ws.put_clips([rec])


@contextlib.contextmanager
def _worker_pool(jobs: int, n_todo: int) -> Iterator[ProcessPoolExecutor | None]:
    """A process pool for ``jobs`` > 1 (None: work in this process). Made before the progress bar starts: the
    workers are forked (no re-import of the caller's script, which spawn would need guarded) while the parent
    has no other thread. On Ctrl-C the workers are stopped at once; their half-written files are hidden temp
    files that are never renamed into place."""
    if jobs <= 1 or n_todo <= 1:
        yield None
        return
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(min(jobs, n_todo), mp_context=multiprocessing.get_context(method),
                               initializer=_worker_init)
    try:
        yield pool
    except BaseException:
        procs = list(getattr(pool, "_processes", {}).values())
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run(todo: list[tuple[ClipRecord, dict]], pool: ProcessPoolExecutor | None) -> Iterator[dict]:
    """Yield each clip's result as it finishes, in this process or in the pool. A worker that dies (a crash in
    native code) fails its clip with ``crashed: True`` (so a re-run tries it again) rather than the run."""
    jobs_list = [job for _, job in todo]
    if pool is None:
        for job in jobs_list:
            yield prepare_clip(job)
        return
    futures = {pool.submit(prepare_clip, job): job for job in jobs_list}
    for fut in as_completed(futures):
        try:
            yield fut.result()
        except Exception as exc:  # BrokenProcessPool and the like
            yield {"clip_id": futures[fut]["clip_id"], "status": "failed", "crashed": True, "n_frames": 0,
                   "fps": FPS, "message": f"worker process died ({type(exc).__name__}); re-run to retry"}


# ------------------------------------------------------------------ per actor
def update_actor_models(ws: Workspace, actors: list[str]) -> list[str]:
    """(Re)compute each actor's reference landmarks and PCA from its ready clips, unless the stored model was
    made from exactly the same landmark artifacts. Returns the actors recomputed."""
    from evpcli.face.normalize import actor_model

    done = []
    for actor in actors:
        clips = ws.clips(actor=actor, status="ok")
        rows = []
        for c in clips:
            row = ws.clip_artifact(KIND_LANDMARKS, c.clip_id)
            if row is not None:
                rows.append((c, row))
        if not rows:
            continue
        signature = cache_key(*sorted(r["key"] for _, r in rows), params={"version": FORMAT_VERSION})
        current = ws.get_artifact(KIND_ACTOR, actor)
        if current is not None and isinstance(current["meta"], dict) and current["meta"].get("signature") == signature:
            continue
        frames, neutral = [], []
        for c, row in rows:
            lm = load_npz(row["path"])
            x = lm["normalised"][lm["valid"].astype(bool)]
            frames.append(x)
            if c.emotion == "neutral":
                neutral.append(x)
        model = actor_model(frames, neutral or None)
        path = ws.path(KIND_ACTOR, f"{actor}-{signature}.npz")
        save_npz(path, **model)
        meta = {"signature": signature, "n_clips": len(rows), "n_frames": int(sum(len(f) for f in frames)),
                "reference_from": "neutral" if neutral else "all", "n_neutral_clips": len(neutral)}
        old_path = current["path"] if current is not None else None
        ws.put_artifact(KIND_ACTOR, actor, path, params={"version": FORMAT_VERSION, "n_components": 16}, meta=meta)
        if old_path is not None and Path(old_path) != path and Path(old_path).exists():
            Path(old_path).unlink()
        done.append(actor)
    return done


def load_actor(ws: Workspace, actor: str) -> dict[str, Any]:
    """An actor's model: ``reference`` (68, 2) float32 (mean normalised landmarks of the neutral clips, or of all
    clips when the actor has no neutral one), ``pca_mean`` (136,), ``pca_components`` (16, 136), ``pca_variance``
    (16,) float32, plus ``meta`` (dict: n_clips, n_frames, reference_from). Raises :class:`EvpError` if missing."""
    row = ws.get_artifact(KIND_ACTOR, actor)
    if row is None:
        raise EvpError(f"no landmark model for actor {actor} in {ws.root}; run `evp prepare-dataset` first")
    return {**load_npz(row["path"]), "meta": row["meta"]}
