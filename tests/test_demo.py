"""`evp demo`: inputs, videos, contact sheet and page from the installed package alone (shipped models)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evpcli.cli import main
from evpcli.errors import EvpError


def test_demo_writes_playable_videos_a_sheet_and_a_page(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing outside OUT is written (no ./evp-workspace)
    out = tmp_path / "demo"
    code = main(["demo", str(out), "--emotions", "happy", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    r = json.loads(captured.out)
    assert r["model"]["origin"] == "shipped"
    kinds = [v["kind"] for v in r["videos"]]
    assert kinds == ["emotion", "still", "interpolation"]
    assert r["videos"][0]["reads"] in {"angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised"}
    for f in r["files"]:
        assert Path(f).is_file() and Path(f).stat().st_size > 0, f
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert not list(out.glob(".workspace-*")), "the temporary workspace is removed"

    from evpcli.media import probe

    for v in [*r["videos"], {"path": r["inputs"]["target"]}]:
        info = probe(v["path"])
        assert info.has_audio and info.size[0] >= 128 and info.duration > 1.0, v["path"]

    page = (out / "index.html").read_text()
    srcs = [s.split("#")[0] for s in re.findall(r'src="([^"]+)"', page)]  # "#t=1.2": the poster moment
    assert all(not s.startswith("/") and (out / s).is_file() for s in srcs), srcs
    for v in r["videos"]:
        assert Path(v["path"]).relative_to(out).as_posix() in srcs
    assert page.count("<video") == len(r["videos"]) + 1  # + the target


def test_demo_bad_emotion_and_out_is_a_file(tmp_path, capsys):
    from evpcli.demo import parse_emotions

    with pytest.raises(EvpError, match="unknown emotion"):
        parse_emotions("happy,glad")
    assert parse_emotions("all")[0] == "angry" and parse_emotions("sad, happy,sad") == ["sad", "happy"]
    (tmp_path / "f").write_text("x")
    assert main(["demo", str(tmp_path / "f")]) == 1
    assert "is a file" in capsys.readouterr().err
    assert main(["demo", str(tmp_path / "d"), "--emotions", "glad"]) == 1
