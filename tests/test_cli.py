import json
import subprocess
import sys

from evpcli.cli import main

SUBCOMMANDS = ["demo", "prepare-dataset", "build-pairs", "train", "fit-pose", "render", "interpolate", "evaluate", "status"]


def test_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_render_help_shows_its_options(capsys):
    assert main(["render", "--help"]) == 0
    out = capsys.readouterr().out
    for opt in ("--audio", "--emotion-audio", "--emotion", "--target", "--out"):
        assert opt in out


def test_status_json_on_empty_workspace(tmp_path, capsys):
    assert main(["--workspace", str(tmp_path / "ws"), "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["clips"]["total"] == 0 and data["models"] == []


def test_usage_error_exits_2(capsys):
    assert main(["render", "--audio", "a.wav"]) == 2  # --target missing
    assert main(["no-such-command"]) == 2


def test_an_unknown_emotion_name_is_a_usage_error_before_any_work(tmp_path, capsys):
    """``--emotion grumpy``: exit 2 with one line naming the emotions, before the target is read (a bad target
    given with it is not reached)."""
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"not read")
    target = tmp_path / "t.png"
    target.write_bytes(b"not an image either")
    code = main(["--workspace", str(tmp_path / "ws"), "-q", "render", "--audio", str(audio), "--target", str(target),
                 "--emotion", "grumpy", "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown emotion 'grumpy'" in err[0] and "happy" in err[0], err
    assert not (tmp_path / "o.mp4").exists()


def test_missing_input_file_exits_1_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "evpcli", "--workspace", str(tmp_path / "ws"), "fit-pose",
                           "--target", str(tmp_path / "missing.mp4")], capture_output=True, text=True)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.mp4: file not found" in lines[0]


def test_env_var_sets_workspace(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVP_WORKSPACE", str(tmp_path / "from-env"))
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["workspace"] == str(tmp_path / "from-env")


def test_interrupt_exits_130_with_a_message(monkeypatch, capsys):
    import evpcli.workspace

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(evpcli.workspace.Workspace, "status", interrupted)
    assert main(["status"]) == 130
    assert "interrupted" in capsys.readouterr().err
