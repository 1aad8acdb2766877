"""Media in and out, through the ffmpeg that imageio-ffmpeg bundles (no system ffmpeg needed).

- :func:`read_video` -> :class:`Video` (frames RGB uint8 (T, H, W, 3), fps), optionally resampled to 25 fps.
- :func:`load_audio` -> 16 kHz mono float32 from any file soundfile or ffmpeg reads (wav, flac, m4a, mp3,
  or a video's audio track).
- :func:`write_video` -> H.264 (yuv420p) mp4 with an AAC track, playable in browsers; written atomically.

Every failure raises :class:`~evpcli.errors.MediaError` with a one-line message naming the file.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evpcli.config import FPS
from evpcli.errors import MediaError
from evpcli.errors import disk_full  # noqa: F401  (media.disk_full: the name callers use)
from evpcli.atomic import _umask, temp_beside

SAMPLE_RATE = 16000


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: file not found")
    if p.is_dir():
        raise MediaError(f"{p}: is a folder, expected a media file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: file is empty")
    return p


def _ffmpeg_reason(stderr: str) -> str:
    """The most telling line of an ffmpeg error output."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if any(k in ln for k in ("Invalid data", "does not contain any stream", "matches no streams",
                                 "moov atom not found", "No such file", "Error")):
            return ln
    return lines[-1] if lines else "ffmpeg failed"


@dataclass
class VideoInfo:
    fps: float
    size: tuple[int, int]  # (width, height)
    duration: float  # seconds
    n_frames: int  # estimated from duration * fps
    has_audio: bool
    audio_rate: int | None = None  # sample rate of the first audio track (Hz)
    sar: tuple[int, int] = (1, 1)  # sample (pixel) aspect ratio: a 128:117 clip's pixels are 9 % wider than high


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, size, duration and whether an audio stream exists, from ffmpeg's header dump."""
    p = _check_file(path)
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(p)], capture_output=True, text=True,
                          errors="replace")
    err = proc.stderr
    m_video = re.search(r"Stream #\S+.*Video: .*?(\d{2,5})x(\d{2,5})", err)
    if m_video is None:
        raise MediaError(f"{p}: not a video file ({_ffmpeg_reason(err)})")
    w, h = int(m_video.group(1)), int(m_video.group(2))
    m_fps = re.search(r"([\d.]+) fps", err) or re.search(r"([\d.]+) tbr", err)
    fps = float(m_fps.group(1)) if m_fps else 25.0
    m_dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", err)
    dur = (int(m_dur.group(1)) * 3600 + int(m_dur.group(2)) * 60 + float(m_dur.group(3))) if m_dur else 0.0
    m_audio = re.search(r"Stream #\S+.*Audio:(.*)", err)
    m_rate = re.search(r"(\d+) Hz", m_audio.group(1)) if m_audio else None
    m_sar = re.search(r"Stream #\S+.*Video: .*?SAR (\d+):(\d+)", err)
    sar = (int(m_sar.group(1)), int(m_sar.group(2))) if m_sar and int(m_sar.group(1)) > 0 and int(m_sar.group(2)) > 0 \
        else (1, 1)
    return VideoInfo(fps=fps, size=(w, h), duration=dur, n_frames=int(round(dur * fps)), has_audio=m_audio is not None,
                     audio_rate=int(m_rate.group(1)) if m_rate else None, sar=sar)


@dataclass
class Video:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.frames.shape[2], self.frames.shape[1]


def iter_frames(path: str | os.PathLike, fps: float | None = None, prefetch: int = 0) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames (H, W, 3) one at a time; ``fps`` resamples (frames dropped or repeated).

    ``prefetch`` > 0 reads that many frames ahead in a thread (the pipe from ffmpeg holds less than one frame, so
    without it ffmpeg waits while the caller works on a frame, and the caller waits while ffmpeg decodes)."""
    import imageio_ffmpeg

    p = _check_file(path)
    info = probe(p)
    w, h = info.size
    out = ["-vf", f"fps={fps}"] if fps else None

    def frames() -> Iterator[np.ndarray]:
        nonlocal w, h
        try:
            gen = imageio_ffmpeg.read_frames(str(p), output_params=out)
            try:
                meta = next(gen)
                w, h = meta.get("size", (w, h))
                for raw in gen:
                    yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            finally:
                gen.close()  # stops ffmpeg when the caller stops early
        except (RuntimeError, OSError, StopIteration) as exc:
            raise MediaError(f"{p}: cannot decode video ({str(exc).splitlines()[0] if str(exc) else 'ffmpeg failed'})"
                             ) from None

    if prefetch > 0:
        yield from threaded(frames(), prefetch)
    else:
        yield from frames()


_DONE = object()


def threaded(items: Iterator, depth: int) -> Iterator:
    """The items of an iterator produced in a worker thread, up to ``depth`` ahead of the consumer. Exceptions of
    the producer reach the consumer; a consumer that stops early stops the producer (and closes its iterator)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            put(_DONE)
        except BaseException as exc:  # handed to the consumer
            put((_DONE, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="evp-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, tuple) and len(item) == 2 and item[0] is _DONE:
                raise item[1]
            yield item
    finally:
        stop.set()
        worker.join()


def read_video(path: str | os.PathLike, fps: float | None = None, max_frames: int | None = None) -> Video:
    """All frames of a video. ``fps=25`` resamples to 25 fps (as training data is); None keeps the source rate."""
    info = probe(path)
    frames = []
    for i, f in enumerate(iter_frames(path, fps)):
        if max_frames is not None and i >= max_frames:
            break
        frames.append(f)
    if not frames:
        raise MediaError(f"{path}: video has no frames")
    expected = info.duration * (fps or info.fps)
    if max_frames is None and expected > 0 and len(frames) < 0.9 * expected - 1:
        raise MediaError(f"{path}: truncated or corrupt video (decoded {len(frames)} of about "
                         f"{int(round(expected))} frames)")
    return Video(np.stack(frames), float(fps or info.fps))


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Audio of any file (wav, flac, ogg, m4a, mp3, or a video's audio track) as mono float32 at ``sr``."""
    p = _check_file(path)
    try:
        import soundfile as sf

        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        wav = data.mean(axis=1)
        wav = np.ascontiguousarray(resample(wav, rate, sr), dtype=np.float32)
    except Exception:
        wav = _ffmpeg_audio(p, sr)
    if wav.size == 0:
        raise MediaError(f"{p}: audio is empty")
    return wav


def resample(wav: np.ndarray, rate: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono audio (N,) from ``rate`` to ``sr`` Hz: exactly ``librosa.resample(wav, orig_sr=rate, target_sr=sr)``
    (soxr's "HQ" resampler, the length cut or zero-padded to ceil(N * sr / rate)) without importing librosa."""
    if rate == sr:
        return wav
    import soxr

    n = int(np.ceil(len(wav) * float(sr) / rate))
    out = soxr.resample(wav, rate, sr, quality="soxr_hq")
    return np.pad(out, (0, max(n - len(out), 0)))[:n].astype(wav.dtype, copy=False)


def _ffmpeg_audio(p: Path, sr: int) -> np.ndarray:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p), "-vn", "-ac", "1", "-ar", str(sr),
         "-f", "f32le", "-"], capture_output=True)
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0 or not proc.stdout:
        if "does not contain any stream" in err or "matches no streams" in err or (
                proc.returncode == 0 and "Audio:" not in err):
            raise MediaError(f"{p}: no audio track")
        if "Audio:" not in err and "Video:" in err:
            raise MediaError(f"{p}: no audio track")
        raise MediaError(f"{p}: not an audio or video file ({_ffmpeg_reason(err)})")
    return np.frombuffer(proc.stdout, np.float32).copy()


def audio_sample_rate(path: str | os.PathLike) -> int | None:
    """The sample rate an audio file (or a video's first audio track) was recorded at, or None if unknown."""
    p = _check_file(path)
    try:
        import soundfile as sf

        return int(sf.info(str(p)).samplerate)
    except Exception:
        pass
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(p)], capture_output=True, text=True, errors="replace")
    m = re.search(r"Stream #\S+.*Audio:.*?(\d+) Hz", proc.stderr)
    return int(m.group(1)) if m else None


def extract_audio(video_path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The audio track of a video as mono float32 at ``sr``; MediaError if it has none."""
    p = _check_file(video_path)
    return _ffmpeg_audio(p, sr)


def save_wav(path: str | os.PathLike, wav: np.ndarray, sr: int = SAMPLE_RATE) -> Path:
    """Write 16-bit PCM wav atomically."""
    import soundfile as sf

    path = Path(path)
    tmp = str(temp_beside(path, ".wav"))
    try:
        sf.write(tmp, np.clip(np.asarray(wav, np.float32), -1, 1), sr, subtype="PCM_16")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


CONTAINERS = {  # output suffix -> (video codec, audio codec or None, extra ffmpeg output options)
    ".mp4": ("libx264", "aac", ["-movflags", "+faststart"]),
    ".mov": ("libx264", "aac", ["-movflags", "+faststart"]),
    ".mkv": ("libx264", "aac", []),
    ".webm": ("libvpx-vp9", "libopus", []),
    ".gif": ("gif", None, []),
}
"""The containers a video output may be written in, chosen by the file's suffix (``.mp4`` by default)."""


def check_container(path: str | os.PathLike, option: str = "--out") -> None:
    """UsageError (exit 2) for an output whose suffix names no container evp writes, or ``-`` (stdout)."""
    from evpcli.errors import UsageError

    p = Path(path)
    if str(path) == "-":
        raise UsageError(f"{option} -: writing the video to stdout is not supported (players need a seekable "
                         "file); give a file name such as out.mp4")
    if p.suffix.lower() not in CONTAINERS:
        raise UsageError(f"{option} {p}: unknown video container {p.suffix or '(no suffix)'!r}; use one of "
                         f"{', '.join(CONTAINERS)} (a GIF has no sound)")


def write_video(path: str | os.PathLike, frames, fps: float = FPS, audio: np.ndarray | None = None,
                sr: int = SAMPLE_RATE, quality: int = 7, preset: str = "veryfast",
                audio_file: str | os.PathLike | None = None, crf: int | None = None,
                sar: tuple[int, int] = (1, 1)) -> Path:
    """Write frames (iterable of (H, W, 3) uint8 RGB) as H.264 yuv420p mp4, with ``audio`` muxed as AAC (96 kb/s),
    or ``audio_file``'s first audio stream at its own sample rate and channels (AAC, 192 kb/s).

    Odd sizes are padded to even (yuv420p needs it). The file appears only when complete (temp + rename), and
    is cut to the shorter of video and audio. ``+faststart`` puts the index first so browsers stream it.
    ``quality`` 7 is x264's CRF 15; ``preset`` veryfast encodes 640x360 frames with 40 % of the CPU time of
    x264's default (medium) at the same size and quality (PSNR against the frames 47.0 vs 48.3 dB). Frames are
    handed to ffmpeg by a writer thread, so the caller makes the next frame while ffmpeg takes the last.
    """
    import queue
    import threading

    import imageio_ffmpeg

    path = Path(path)
    suffix = path.suffix.lower() if path.suffix.lower() in CONTAINERS else ".mp4"
    video_codec, audio_codec, extra = CONTAINERS[suffix]
    tmp = str(temp_beside(path, suffix))
    wav_tmp = None
    writer = None
    pending: queue.Queue = queue.Queue(maxsize=4)
    failed: list[BaseException] = []
    thread = None

    def send() -> None:
        try:
            while True:
                frame = pending.get()
                if frame is None:
                    return
                if not failed:
                    writer.send(frame)
        except BaseException as exc:  # reported to the caller at the next frame or at the end
            failed.append(exc)
            while pending.get() is not None:  # drain so the caller never blocks
                pass

    def hand(frame) -> None:
        if failed:
            raise failed[0]
        pending.put(frame)

    try:
        audio_args = {}
        audio_rate = "96k"
        if audio_codec is None:  # a GIF has no sound
            pass
        elif audio_file is not None:  # the speech as given: its own sample rate and channels, a normal bitrate
            audio_args = {"audio_path": str(audio_file), "audio_codec": audio_codec}
            audio_rate = "192k"
        elif audio is not None:
            wav_tmp = save_wav(Path(tmp).with_suffix(".wav"), audio, sr)
            audio_args = {"audio_path": str(wav_tmp), "audio_codec": audio_codec}
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
            h, w = frame.shape[:2]
            if h % 2 or w % 2:
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                params = {"libx264": ["-preset", preset] + (["-crf", str(crf)] if crf is not None else []),
                          "libvpx-vp9": ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "0",
                                         "-crf", str(crf if crf is not None else 32)]}.get(video_codec, [])
                if tuple(sar) != (1, 1) and video_codec != "gif":  # keep the input's pixel shape (display aspect)
                    params += ["-vf", f"setsar={int(sar[0])}/{int(sar[1])}"]
                x264_quality = quality if video_codec == "libx264" and crf is None else None
                writer = imageio_ffmpeg.write_frames(
                    tmp, size, fps=fps, codec=video_codec, quality=x264_quality,
                    macro_block_size=2, ffmpeg_log_level="error",
                    pix_fmt_out="rgb8" if video_codec == "gif" else "yuv420p",
                    output_params=params + extra + ["-shortest"] + (["-b:a", audio_rate] if audio_args else []),
                    **audio_args)
                writer.send(None)
                thread = threading.Thread(target=send, name="evp-encode", daemon=True)
                thread.start()
            hand(np.ascontiguousarray(frame))
        if writer is None:
            raise MediaError(f"{path}: no frames to write")
        pending.put(None)
        thread.join()
        thread = None
        if failed:
            raise failed[0]
        writer.close()
        writer = None
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except Exception as exc:
        if disk_full(exc, Path(tmp).parent):  # libsndfile's 'System error', ffmpeg's broken pipe, ENOSPC
            raise MediaError(f"{path}: the disk is full (no space left to write the video); free some space or write "
                             "to another disk") from None
        raise
    finally:
        if thread is not None:  # the caller failed: let the writer thread finish what it holds
            pending.put(None)
            thread.join()
        if writer is not None:  # failed half-way: stop ffmpeg before removing its output
            try:
                writer.close()
            except Exception:
                pass
        for t in (tmp, wav_tmp):
            if t is not None and os.path.exists(t):
                os.unlink(t)
    return path
