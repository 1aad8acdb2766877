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
(16, 136), ``pca_variance`` (16,) (:mod:`evpcli.actors`: :func:`~evpcli.actors.update_actor_models` makes it,
:func:`~evpcli.actors.load_actor` reads it).

Clips that cannot be prepared (unreadable video, no face, audio and video lengths differing by more than
``max_av_mismatch`` seconds, unknown emotion, ...) are indexed with ``status="failed"`` and the reason, listed in
the :class:`PrepareReport` and in ``<workspace>/prepare-report.json``; the run goes on. Workers are processes
(``jobs``) or Ray tasks (``executor="ray"``); the index is written by the parent only, after each clip's files are
complete, so an interrupted run leaves a consistent workspace and a re-run resumes. A clip being prepared is
claimed (``<workspace>/claims/``, an flock the kernel drops when its process dies), so concurrent runs over the
same clips share the work: a clip another live run holds is left to it and picked up (found, not recomputed) once
it is done.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from evpcli.actors import update_actor_models
from evpcli.config import FPS, Audio2LandmarkTrainConfig, AudioConfig, LandmarkConfig
from evpcli.errors import EvpError
from evpcli.progress import Progress
from evpcli.workspace import (CLAIMS, KIND_LANDMARKS, KIND_MFCC, ClipRecord, Workspace, cache_key, claim,
                              hash_file, load_npz, save_json, save_npz)

FORMAT_VERSION = 1  # bump when the artifacts' content changes without a config change
REPORT_NAME = "prepare-report.json"
MIN_FRAMES = Audio2LandmarkTrainConfig().seq_len  # shorter clips cannot give one training sequence: refused
NARROW_BAND_HZ = 16000  # audio recorded at a lower rate lacks the upper bands of the MFCC's mel filters


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


def _too_short(n_frames: float, min_frames: int) -> str:
    return (f"clip is too short: {n_frames / FPS:.2f} s ({round(n_frames)} frames at 25 fps); training needs at least "
            f"{min_frames} frames ({min_frames / FPS:.2f} s)")


def _claim_path(ws: Workspace, clip_id: str) -> str:
    return str(ws.root / CLAIMS / f"{clip_id.replace('/', '-')}.lock")


def _remove_temp_files(job: dict) -> None:
    """Hidden temp files of a clip's two artifacts: left by a run that died while writing them (only the holder of
    the clip's claim writes them, so while holding it none is in use)."""
    for key in ("mfcc_path", "landmarks_path"):
        path = Path(job[key])
        for tmp in path.parent.glob(f".{path.name}.*"):
            tmp.unlink(missing_ok=True)


def existing_clip_files(mfcc_path: str | os.PathLike, landmarks_path: str | os.PathLike) -> dict | None:
    """``{n_frames, detected, valid}`` when both of a clip's files exist and load (made by an earlier or a concurrent
    run), else None."""
    mfcc_path, landmarks_path = Path(mfcc_path), Path(landmarks_path)
    if not (mfcc_path.exists() and landmarks_path.exists()):
        return None
    try:
        lm = load_npz(landmarks_path)
        load_npz(mfcc_path)
    except EvpError:  # corrupt leftovers: recompute
        return None
    return {"n_frames": len(lm["landmarks"]), "detected": float(lm["detected"].mean()),
            "valid": float(lm["valid"].mean())}


# ------------------------------------------------------------------ the per-clip work (runs in workers)
def prepare_clip(job: dict) -> dict:
    """Compute and write one clip's MFCC and landmark files. ``job``: paths, keys and configs (plain data, so
    it pickles to a worker). Returns ``{clip_id, status, message, n_frames, fps, seconds, detected, valid}``;
    never raises for bad input (the reason goes in ``message``).

    With ``job["claim_path"]`` the clip is claimed first (see :func:`evpcli.workspace.claim`): a clip another run
    holds comes back with ``status="busy"`` (or, with ``job["wait"]``, is waited for); a clip whose files another
    run finished meanwhile comes back ``ok`` with ``found: True`` without being computed again."""
    if not job.get("claim_path"):
        return _compute_clip(job)
    with claim(job["claim_path"], wait=bool(job.get("wait"))) as held:
        if not held:
            return {"clip_id": job["clip_id"], "status": "busy", "message": "claimed by another run", "n_frames": 0,
                    "fps": FPS}
        _remove_temp_files(job)
        found = existing_clip_files(job["mfcc_path"], job["landmarks_path"])
        if found is not None:
            return {"clip_id": job["clip_id"], "status": "ok", "found": True, "message": "", "fps": FPS,
                    "seconds": 0.0, **found}
        return _compute_clip(job)


def _compute_clip(job: dict) -> dict:
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
    min_frames = int(job.get("min_frames", 0))

    def check_long_enough(n: float) -> None:
        if n < min_frames:
            raise EvpError(_too_short(n, min_frames))

    try:
        info = media.probe(video)
        if info.duration > 0:
            check_long_enough(info.duration * FPS)
        out["audio_rate"] = media.audio_sample_rate(audio_path) if audio_path else info.audio_rate
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
        out["audio_rms"] = float(np.sqrt(np.mean(np.square(np.asarray(wav, np.float64))))) if len(wav) else 0.0
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
        check_long_enough(n)
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
    except Exception as exc:  # MediaError/EvpError: the clip's fault; a bug or an odd file: the run goes on
        first = str(exc).splitlines()[0] if str(exc) else ""
        if environment_failure(exc):  # the machine's, not the clip's: retried by the next run
            out["message"] = f"{first or type(exc).__name__} (the machine's, not the clip's: a re-run retries it)"
            out["environment"] = True
        elif isinstance(exc, EvpError):
            out["message"] = str(exc)
        else:
            out["message"] = f"internal error: {type(exc).__name__}: {first}"
    out["seconds"] = time.perf_counter() - t0
    return out


ENV_ERRNOS = (errno.ENOSPC, errno.EIO, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.ENOMEM,
              errno.EMFILE, errno.ENFILE)
ENV_MESSAGES = ("No space left on device", "Disk quota exceeded", "Input/output error", "Permission denied",
                "Read-only file system", "Cannot allocate memory", "Too many open files")


def environment_failure(exc: BaseException) -> bool:
    """Whether an error came from the machine (a full disk, an I/O error, a permission, memory), not from the clip:
    such clips are not failed for good. Libraries that wrap the OS error (libsndfile's 'System error', ffmpeg's
    messages) are recognised by the OS's message."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENV_ERRNOS:
            return True
        if any(m in str(exc) for m in ENV_MESSAGES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


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
                    sentence_map: str | os.PathLike | None = None, jobs: int = 1, executor: str = "local",
                    ray_address: str | None = None, landmark_config: LandmarkConfig | None = None,
                    audio_config: AudioConfig | None = None,
                    max_av_mismatch: float = 0.5, min_frames: int = MIN_FRAMES,
                    progress: Progress | None = None, retry_failed: bool = False) -> PrepareReport:
    """Prepare every clip of ``source`` (see the module docstring); returns the run's :class:`PrepareReport`,
    also written to ``<workspace>/prepare-report.json``. Raises :class:`EvpError` for a bad source (missing
    folder, manifest without the required columns); per-clip problems go into the report instead.
    ``executor`` ``local`` runs the clips in this process (``jobs`` 1) or in ``jobs`` worker processes; ``ray``
    runs one Ray task per clip (:mod:`evpcli.executors`: a local Ray of ``jobs`` CPUs, or the cluster at
    ``ray_address``). Either way the workers write the clips' files and this process alone writes the index.
    A KeyboardInterrupt stops the workers, writes the report (``interrupted: true``) and is re-raised.
    """
    from evpcli.executors import make_executor, open_executor

    make_executor(executor, jobs, ray_address)  # a bad choice fails before the scan
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
            if not rec.extra.get("not_a_clip"):  # a manifest row without a clip id is only reported
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
        if index_same and old.status == "ok" and 0 < old.n_frames < min_frames:  # indexed before clips were checked
            fail(rec, _too_short(old.n_frames, min_frames))
            to_index.append(rec)
            continue
        if index_same and old.status == "ok" and (KIND_MFCC, mkey) in have and (KIND_LANDMARKS, lkey) in have:
            report.cached += 1
            report.actors[rec.actor] = report.actors.get(rec.actor, 0) + 1
            continue
        if index_same and old.status == "failed" and not retry_failed:  # same files, same parameters: same failure
            fail(rec, old.message)
            continue
        mpath = ws.path(KIND_MFCC, _artifact_name(rec.clip_id, mkey))
        lpath = ws.path(KIND_LANDMARKS, _artifact_name(rec.clip_id, lkey))
        found = existing_clip_files(mpath, lpath)  # written by a run stopped before it updated the index
        if found is not None and found["n_frames"] >= min_frames:
            rec.n_frames, rec.fps, rec.status = found["n_frames"], FPS, "ok"
            rec.message = ""
            _register(ws, rec, mkey, lkey, mpath, lpath, mfcc_params, lm_params, found)
            report.cached += 1
            report.actors[rec.actor] = report.actors.get(rec.actor, 0) + 1
            continue
        todo.append((rec, {"clip_id": rec.clip_id, "video": rec.video, "audio": rec.audio,
                           "mfcc_path": str(mpath), "landmarks_path": str(lpath),
                           "claim_path": _claim_path(ws, rec.clip_id),
                           "audio_config": asdict(acfg), "landmark_config": asdict(lcfg),
                           "max_av_mismatch": float(max_av_mismatch), "min_frames": int(min_frames)}))
    if to_index:
        ws.put_clips(to_index)

    by_id = {rec.clip_id: (rec, job) for rec, job in todo}
    try:
        # the executor is entered before the progress bar starts: a local pool forks while this process has one thread
        with open_executor(executor, jobs, ray_address, n_jobs=len(todo)) as pool, \
                (progress if todo else Progress()).task("prepare", total=len(todo), unit="clips") as bar:
            # clips another run has claimed wait for the end, then for that run: it finishes them (found here,
            # not computed again) or dies (its claim drops with it, and the clip is computed here)
            deferred = []
            for result in _run(todo, pool):
                if result["status"] == "busy":
                    deferred.append(by_id[result["clip_id"]])
                    continue
                _take_result(ws, report, result, *by_id[result["clip_id"]], mfcc_params, lm_params, fail)
                bar.advance(1)
            for _, job in deferred:
                job["wait"] = True
            for result in _run(deferred, pool):
                _take_result(ws, report, result, *by_id[result["clip_id"]], mfcc_params, lm_params, fail)
                bar.advance(1)
        narrow_band(ws, {r.clip_id for r in records}, report)
        silent_audio(ws, {r.clip_id for r in records}, report)
        report.actor_models = update_actor_models(ws, sorted(report.actors))
    except KeyboardInterrupt:
        report.interrupted = True
        for _, job in todo:  # temp files of clips whose worker was stopped mid-write (hidden, never renamed),
            with claim(job["claim_path"]) as held:  # unless another run holds the clip and is writing them
                if held:
                    _remove_temp_files(job)
        raise
    finally:
        report.failed.sort(key=lambda f: f["clip_id"])
        report.seconds = time.perf_counter() - t_start
        save_json(ws.root / REPORT_NAME, report.to_dict())
    return report


def narrow_band(ws: Workspace, clip_ids: set[str], report: PrepareReport) -> None:
    """Warn (in the report) about ready clips whose audio was recorded below 16 kHz (telephone speech is 8 kHz)."""
    narrow = [c for c in ws.clips() if c.clip_id in clip_ids and 0 < int(c.extra.get("audio_rate") or 0) < NARROW_BAND_HZ]
    if narrow:
        rates = sorted({int(c.extra["audio_rate"]) for c in narrow})
        report.warnings.append(
            f"{len(narrow)} clip(s) have narrow-band audio (recorded at {', '.join(map(str, rates))} Hz; first: "
            f"{narrow[0].clip_id}): nothing above {rates[-1] // 2} Hz, so their MFCCs differ from wide-band speech; "
            "use 16 kHz (or better) recordings where you can, and do not mix the two in one actor if you can avoid it")


from evpcli.audio import SILENT_RMS  # noqa: E402  (a clip quieter than that has nothing to learn from)


def silent_audio(ws: Workspace, clip_ids: set[str], report: PrepareReport) -> None:
    """Warn (in the report) about ready clips whose audio is silent or nearly (a muted track, a wrong audio file)."""
    silent = sorted(c.clip_id for c in ws.clips() if c.clip_id in clip_ids and c.status == "ok"
                    and c.extra.get("audio_rms") is not None and float(c.extra["audio_rms"]) < SILENT_RMS)
    if silent:
        report.warnings.append(
            f"{len(silent)} clip(s) have silent audio (under -60 dBFS; first: {silent[0]}): the models learn nothing "
            "of speech or emotion from them; check their audio tracks (or the audio files given)")


def _take_result(ws: Workspace, report: PrepareReport, result: dict, rec: ClipRecord, job: dict, mfcc_params: dict,
                 lm_params: dict, fail) -> None:
    """Index one clip's result (its files are complete) and count it in the report."""
    if result["status"] == "ok":
        rec.status, rec.message = "ok", result.get("message", "")
        rec.n_frames, rec.fps = result["n_frames"], result["fps"]
        if result.get("audio_rate"):
            rec.extra["audio_rate"] = result["audio_rate"]
        if "audio_rms" in result:
            rec.extra["audio_rms"] = result["audio_rms"]
        _register(ws, rec, rec.extra["mfcc_key"], rec.extra["landmarks_key"], Path(job["mfcc_path"]),
                  Path(job["landmarks_path"]), mfcc_params, lm_params,
                  {k: result[k] for k in ("n_frames", "detected", "valid", "seconds")})
        if result.get("found"):  # finished by a concurrent run
            report.cached += 1
        else:
            report.prepared += 1
            report.frames += result["n_frames"]
        report.actors[rec.actor] = report.actors.get(rec.actor, 0) + 1
    else:
        if result.get("crashed") or result.get("environment"):  # not the clip's fault: a re-run retries it
            rec.extra.pop("mfcc_key", None)
        fail(rec, result["message"])
        ws.put_clips([rec])


def _register(ws: Workspace, rec: ClipRecord, mkey: str, lkey: str, mpath: Path, lpath: Path, mfcc_params: dict,
              lm_params: dict, meta: dict) -> None:
    """Index a clip's two finished artifact files, then the clip itself (in that order: an index row with
    status ok always has its files)."""
    ws.put_artifact(KIND_MFCC, mkey, mpath, clip_id=rec.clip_id, params=mfcc_params, meta=meta)
    ws.put_artifact(KIND_LANDMARKS, lkey, lpath, clip_id=rec.clip_id, params=lm_params, meta=meta)
    ws.put_clips([rec])


def _run(todo: list[tuple[ClipRecord, dict]], pool) -> Iterator[dict]:
    """Yield each clip's result as it finishes, from the executor (:mod:`evpcli.executors`). A worker that dies (a
    crash in native code, a lost Ray node) or raises fails its clip with ``crashed: True`` (so a re-run tries it
    again) rather than the run."""
    jobs_list = [job for _, job in todo]
    for i, result, error in pool.run(prepare_clip, jobs_list):
        if error is not None:
            from evpcli.executors import WorkerLost

            first = str(error).splitlines()[0] if str(error) else ""
            message = first if isinstance(error, WorkerLost) else \
                f"internal error in a worker: {type(error).__name__}: {first}; re-run to retry"
            result = {"clip_id": jobs_list[i]["clip_id"], "status": "failed", "crashed": True, "n_frames": 0,
                      "fps": FPS, "message": message}
        yield result
