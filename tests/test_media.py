import os

import numpy as np
import pytest

from evpcli import media
from evpcli.errors import MediaError
from tests.conftest import moving_square_frames, sine


def test_roundtrip_video_with_audio(tmp_path):
    frames = moving_square_frames(50)  # 2 s at 25 fps
    wav = sine(2.0, 330)
    out = media.write_video(tmp_path / "clip.mp4", frames, fps=25, audio=wav)
    info = media.probe(out)
    assert info.size == (64, 48) and abs(info.fps - 25) < 1e-6 and info.has_audio
    v = media.read_video(out)
    assert v.frames.shape == (50, 48, 64, 3) and v.frames.dtype == np.uint8
    # lossy codec, but each frame must match its source frame (the moving square is where it was)
    err = np.abs(v.frames.astype(int) - frames.astype(int)).mean(axis=(1, 2, 3))
    assert err.max() < 8
    back = media.extract_audio(out)
    assert abs(len(back) - len(wav)) < 0.1 * 16000
    spectrum = np.abs(np.fft.rfft(back))
    assert abs(np.argmax(spectrum) * 16000 / len(back) - 330) < 3
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp files left


def test_written_mp4_is_h264_yuv420p_aac(tmp_path):
    import subprocess

    out = media.write_video(tmp_path / "odd.mp4", moving_square_frames(10, size=(63, 47)), audio=sine(0.4))
    err = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-i", str(out)], capture_output=True, text=True).stderr
    assert "h264" in err and "yuv420p" in err and "aac" in err
    assert "64x48" in err  # odd size padded to even


def test_resample_to_25_fps(tmp_path):
    frames = moving_square_frames(60)  # 2 s at 30 fps
    path = media.write_video(tmp_path / "30fps.mp4", frames, fps=30)
    assert media.read_video(path).n_frames == 60
    v = media.read_video(path, fps=25)
    assert v.fps == 25 and abs(v.n_frames - 50) <= 1


def test_carphone_real_video(carphone_mp4):
    v = media.read_video(carphone_mp4)
    assert v.size == (176, 144) and v.n_frames > 90
    v25 = media.read_video(carphone_mp4, fps=25)
    assert abs(v25.n_frames / 25 - v.n_frames / v.fps) < 0.2


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="nothere.mp4: file not found"):
        media.read_video(tmp_path / "nothere.mp4")
    with pytest.raises(MediaError, match="file not found"):
        media.load_audio(tmp_path / "nothere.wav")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty.mp4: file is empty"):
        media.read_video(tmp_path / "empty.mp4")


def test_not_a_media_file(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(MediaError, match="notes.mp4: not a video"):
        media.read_video(p)
    with pytest.raises(MediaError, match="notes.mp4: not an audio or video file"):
        media.load_audio(p)


def test_truncated_mp4(tmp_path):
    good = media.write_video(tmp_path / "good.mp4", moving_square_frames(25), audio=sine(1.0))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    with pytest.raises(MediaError, match="bad.mp4"):
        media.read_video(bad)


def test_video_without_audio_track(tmp_path):
    p = media.write_video(tmp_path / "silent.mp4", moving_square_frames(10))
    assert not media.probe(p).has_audio
    with pytest.raises(MediaError, match="silent.mp4: no audio track"):
        media.extract_audio(p)


def test_failed_write_leaves_nothing(tmp_path):
    def frames():
        yield np.zeros((32, 32, 3), np.uint8)
        raise RuntimeError("generator failed half-way")

    with pytest.raises(RuntimeError):
        media.write_video(tmp_path / "half.mp4", frames())
    assert os.listdir(tmp_path) == []


def test_audio_formats_via_ffmpeg(tmp_path):
    import subprocess

    wav = sine(1.0, 500)
    src = media.save_wav(tmp_path / "a.wav", wav)
    m4a = tmp_path / "a.m4a"
    subprocess.run([media.ffmpeg_exe(), "-loglevel", "error", "-i", str(src), "-ar", "44100", "-c:a", "aac", str(m4a)],
                   check=True)
    back = media.load_audio(m4a)
    assert abs(len(back) - 16000) < 0.06 * 16000
    assert abs(np.argmax(np.abs(np.fft.rfft(back))) * 16000 / len(back) - 500) < 3


def test_threaded_keeps_order_errors_and_stops_early():
    assert list(media.threaded(iter(range(50)), 4)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("producer failed")

    with pytest.raises(ValueError, match="producer failed"):
        list(media.threaded(failing(), 2))
    closed = []

    def endless():
        try:
            k = 0
            while True:
                yield k
                k += 1
        finally:
            closed.append(True)

    it = media.threaded(endless(), 3)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()
    assert closed == [True]


def test_prefetched_frames_equal_plain_ones(tmp_path):
    path = media.write_video(tmp_path / "sq.mp4", moving_square_frames(30), fps=25)
    plain = np.stack(list(media.iter_frames(path, 25)))
    ahead = np.stack(list(media.iter_frames(path, 25, prefetch=4)))
    assert plain.shape == (30, 48, 64, 3) and np.array_equal(plain, ahead)
    first = media.iter_frames(path, 25, prefetch=4)
    assert next(first).shape == (48, 64, 3)
    first.close()  # stops the decoder early without hanging


def test_encoder_failure_reaches_the_caller(tmp_path, monkeypatch):
    """The writer thread's errors (ffmpeg dies) surface in write_video, and nothing is left at the path."""
    import imageio_ffmpeg

    real = imageio_ffmpeg.write_frames

    def broken(*args, **kwargs):
        gen = real(*args, **kwargs)
        gen.send(None)
        n = 0
        while True:
            frame = yield
            n += 1
            if n > 5:
                gen.close()
                raise OSError("encoder died")
            gen.send(frame)

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", broken)
    with pytest.raises(OSError, match="encoder died"):
        media.write_video(tmp_path / "x.mp4", moving_square_frames(40), fps=25)
    assert os.listdir(tmp_path) == []
