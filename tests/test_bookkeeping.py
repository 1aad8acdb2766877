"""What the workspace says it holds is what the stages use (issue 13, item 5)."""

from __future__ import annotations

import json
import shutil

import pytest

from evpcli.cli import main
from evpcli.config import PairsConfig
from evpcli.errors import EvpError
from evpcli.media import save_wav, write_video
from evpcli.pairs import build_pairs, load_pairs
from evpcli.prepare import prepare_dataset
from evpcli.workspace import Workspace
from tests.conftest import sine
from tests.test_landmarks import moving_portrait
from tests.test_pairs import small_ws  # noqa: F401  (fixture)


def test_status_counts_the_pairs_in_use_not_superseded_ones(small_ws, tmp_path):  # noqa: F811
    src = small_ws
    src.close()
    shutil.copytree(src.root, tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    capped = build_pairs(ws, cfg=PairsConfig(max_pairs_per_sentence=1))
    assert ws.status()["pairs"] == capped.pairs == len(load_pairs(ws)) == 2
    full = build_pairs(ws)  # the same groups again, uncapped: supersedes the capped pairs
    assert ws.status()["pairs"] == full.pairs == len(load_pairs(ws)) == 6
    again = build_pairs(ws, cfg=PairsConfig(max_pairs_per_sentence=1))  # back to the cap: reused from the cache
    assert again.pairs_computed == 0
    assert ws.status()["pairs"] == again.pairs == len(load_pairs(ws)) == 2


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    """A 1.2 s clip (16 kHz audio), a 0.2 s clip and a 1.2 s clip whose audio is 8 kHz telephone speech."""
    d = tmp_path_factory.mktemp("clips")
    frames, _ = moving_portrait(30)
    write_video(d / "long.mp4", frames, fps=25.0)
    save_wav(d / "long.wav", sine(1.2))
    write_video(d / "short.mp4", frames[:5], fps=25.0)
    save_wav(d / "short.wav", sine(0.2))
    save_wav(d / "narrow.wav", sine(1.2, sr=8000), sr=8000)
    return d


def _manifest(d, rows: list[str]):
    path = d / "clips.csv"
    path.write_text("video,audio,actor,emotion,level,sentence\n" + "\n".join(rows) + "\n")
    return path


def test_a_short_csv_row_is_reported_by_its_line_and_not_indexed(clip_files, tmp_path, capsys):
    shutil.copytree(clip_files, tmp_path / "d")
    manifest = _manifest(tmp_path / "d", ["long.mp4,long.wav,A,happy,1,s1",
                                          "long.mp4,long.wav,A,level_1",  # a short row: fields shifted
                                          "long.mp4,long.wav,A,sad,1,s1,extra"])  # a long row
    ws = tmp_path / "ws"
    assert main(["--workspace", str(ws), "prepare-dataset", str(manifest), "--layout", "manifest", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {f["clip_id"]: f["reason"] for f in report["failed"]}
    assert set(reasons) == {"clips.csv:3", "clips.csv:4"}
    assert "has 4 fields, the header has 6" in reasons["clips.csv:3"]
    assert "has 7 fields, the header has 6" in reasons["clips.csv:4"]
    assert [c.clip_id for c in Workspace(ws).clips(status=None)] == ["A/happy/level_1/001"]  # no '?/?/level_/001'


def test_a_clip_too_short_to_train_on_is_refused_at_prepare_time(clip_files, tmp_path):
    manifest = _manifest(clip_files, ["long.mp4,long.wav,A,happy,1,s1", "short.mp4,short.wav,A,sad,1,s1"])
    ws = Workspace(tmp_path / "ws")
    report = prepare_dataset(ws, manifest, "manifest")
    assert report.ok == 1 and [f["clip_id"] for f in report.failed] == ["A/sad/level_1/001"]
    assert "too short: 0.20 s (5 frames at 25 fps); training needs at least 16 frames" in report.failed[0]["reason"]
    assert [c.clip_id for c in ws.clips(status="failed")] == ["A/sad/level_1/001"]


def test_a_folder_given_as_manifest_says_so(tmp_path, capsys):
    assert main(["-q", "--workspace", str(tmp_path / "ws"), "prepare-dataset", str(tmp_path), "--layout",
                 "manifest"]) == 1
    err = capsys.readouterr().err
    assert "is a folder; --layout manifest takes a CSV file" in err and "--layout mead" in err
    with pytest.raises(EvpError, match="manifest not found"):
        prepare_dataset(Workspace(tmp_path / "ws"), tmp_path / "none.csv", "manifest")


def test_narrow_band_audio_is_accepted_with_a_warning(clip_files, tmp_path, capsys):
    manifest = _manifest(clip_files, ["long.mp4,long.wav,A,happy,1,s1", "long.mp4,narrow.wav,A,sad,1,s1"])
    ws = Workspace(tmp_path / "ws")
    report = prepare_dataset(ws, manifest, "manifest")
    assert report.ok == 2 and not report.failed
    narrow = [w for w in report.warnings if "narrow-band" in w]
    assert len(narrow) == 1 and "1 clip(s)" in narrow[0] and "8000 Hz" in narrow[0] and "A/sad/level_1/001" in narrow[0]
    again = prepare_dataset(ws, manifest, "manifest")  # cached: still said
    assert again.cached == 2 and any("narrow-band" in w for w in again.warnings)
    assert main(["--workspace", str(ws.root), "prepare-dataset", str(manifest), "--layout", "manifest"]) == 0
    assert "warning:" in capsys.readouterr().err
