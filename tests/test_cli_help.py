"""The help a user reads and the options they type (issue 13, item 6)."""

from __future__ import annotations

import json

import pytest
import typer

from evpcli.cli import app, global_options_first, main
from evpcli.workspace import ClipRecord, Workspace

COMMANDS = sorted(typer.main.get_command(app).commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_shows_every_option_whole_and_no_type_placeholders(command, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "<bool>" not in out and "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for param in typer.main.get_command(app).commands[command].params:
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("--"):
                assert name in out, (command, name)


def test_usage_lines_name_arguments_without_braces(capsys):
    for command, arg in (("prepare-dataset", "SOURCE"), ("synth-corpus", "OUT"), ("batch-render", "JOBS_CSV")):
        assert main([command, "--help"]) == 0
        usage = capsys.readouterr().out.strip().splitlines()[0]
        assert usage == f"Usage: evp {command} [OPTIONS] {arg}", usage


def test_top_level_help_lists_every_exit_code(capsys):
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for code in ("0 ok", "1 failed", "2 usage error", "130 interrupted"):
        assert code in out


def test_workspace_option_works_after_the_subcommand(tmp_path, capsys):
    for argv in (["status", "--json", "-w", str(tmp_path / "a")], ["status", "--workspace", str(tmp_path / "a"),
                 "--json"], ["status", f"--workspace={tmp_path / 'a'}", "--json"], ["-q", "status", "-w",
                 str(tmp_path / "a"), "--json"]):
        assert main(argv) == 0, argv
        assert json.loads(capsys.readouterr().out)["workspace"] == str(tmp_path / "a")
    # subcommand options and values are left alone; only the global ones move
    assert global_options_first(["train", "--stage", "audio2lm", "--device", "cpu", "-w", "ws", "-q"]) == \
        ["-w", "ws", "-q", "train", "--stage", "audio2lm", "--device", "cpu"]
    assert global_options_first(["--device", "cpu", "status", "--json"]) == ["--device", "cpu", "status", "--json"]
    assert global_options_first(["render", "--", "-w"]) == ["render", "--", "-w"]


def test_status_prints_its_table_on_stdout(tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    ws.put_clip(ClipRecord("A7/happy/level_1/001", "A7", "happy", 1, "s1", "v.mp4", status="ok"))
    assert main(["--workspace", str(ws.root), "status"]) == 0
    out, err = capsys.readouterr()
    assert "A7" in out and "clips ready" in out and err == ""
