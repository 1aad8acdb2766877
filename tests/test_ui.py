"""evp ui: the local web page (evpcli.ui), its API without a browser, and the page driven by a real headless
Chromium (the system's, through Playwright; skipped with the reason when either is missing)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from evpcli import media


def _post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture()
def server(tiny_models, tmp_path):
    from evpcli.ui import Server

    _, ws = tiny_models
    srv = Server(ws.root, port=0, max_upload_mb=1.0)
    url = srv.start()
    yield srv, url
    srv.close()
    assert not srv.tmp.exists()  # uploads and outputs are gone with the server


@pytest.fixture(scope="module")
def speech(tmp_path_factory, arctic_wav) -> Path:
    import soundfile as sf

    path = tmp_path_factory.mktemp("ui") / "speech.wav"
    sf.write(path, media.load_audio(arctic_wav)[4800:4800 + 24000], 16000)  # 1.5 s of real speech
    return path


def test_api_queues_a_render_and_reports_one_line_errors(server, speech, carphone_mp4):
    srv, url = server
    assert url.startswith("http://127.0.0.1:")
    info = _get(url + "api/info")
    assert "happy" in info["emotions"] and info["max_upload_mb"] == 1.0
    # over the upload limit: refused (read and dropped, never stored)
    code, body = _post(url + "api/upload", b"x" * (1024 * 1024 + 1), {"X-Filename": "big.mp4"})
    assert code == 413 and "limit" in body["error"]
    ids = {}
    for name, path in (("target", carphone_mp4), ("audio", speech)):
        code, body = _post(url + "api/upload", Path(path).read_bytes(), {"X-Filename": Path(path).name})
        assert code == 200, body
        ids[name] = body["id"]
    code, body = _post(url + "api/upload", b"not a video at all", {"X-Filename": "notes.txt"})
    ids["bad"] = body["id"]
    jobs = []
    for target in (ids["target"], ids["bad"]):
        code, body = _post(url + "api/jobs", json.dumps({"mode": "render", "target": {"upload": target},
                                                         "audio": {"upload": ids["audio"]}, "emotion": "sad"}).encode())
        assert code == 200, body
        jobs.append(body["id"])
    second = _get(url + f"api/jobs/{jobs[1]}")
    assert second["state"] in ("queued", "running", "failed")  # one worker: it waits for the first
    deadline = time.time() + 300
    states = {}
    while time.time() < deadline and len(states) < 2:
        for j in jobs:
            s = _get(url + f"api/jobs/{j}")
            if s["state"] in ("done", "failed"):
                states[j] = s
        time.sleep(0.3)
    good, bad = states[jobs[0]], states[jobs[1]]
    assert good["state"] == "done", good
    assert good["result"]["emotion"]["description"] == "sad" and "render" in good["result"]["stage_seconds"]
    assert bad["state"] == "failed" and "\n" not in bad["error"] and "Traceback" not in bad["error"]
    with urllib.request.urlopen(url + good["result"]["video"].lstrip("/")) as r:
        data = r.read()
    out = srv.tmp / "copy.mp4"
    out.write_bytes(data)
    info = media.probe(out)
    assert info.has_audio and abs(info.duration - 1.5) < 0.1
    # a range request (the player seeks)
    req = urllib.request.Request(url + good["result"]["video"].lstrip("/"), headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 206 and r.read() == data[10:20]
    code, body = _post(url + "api/jobs", json.dumps({"mode": "render", "audio": {"upload": ids["audio"]}}).encode())
    assert code == 400 and "target" in body["error"]


def _browser():
    pw = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    return pw, exe


def _open(p, exe: str, url: str, target, speech):
    """A headless Chromium on the page, its lists filled, with ``target`` and ``speech`` chosen for upload."""
    browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("document.getElementById('emotion').options.length > 0")
    page.set_input_files("#target-file", str(target))
    page.set_input_files("#audio-file", str(speech))
    return browser, page


def test_the_page_renders_in_a_real_browser(server, speech, carphone_mp4):
    pw, exe = _browser()
    _, url = server
    with pw.sync_playwright() as p:
        browser, page = _open(p, exe, url, carphone_mp4, speech)
        page.select_option("#emotion", "happy")
        page.click("#go")
        page.wait_for_function("!document.getElementById('video').classList.contains('hidden') || "
                               "document.getElementById('error').textContent", timeout=300_000)
        assert page.text_content("#error") == ""
        page.wait_for_function("document.getElementById('video').readyState >= 1", timeout=30_000)
        duration = page.evaluate("document.getElementById('video').duration")
        assert abs(duration - 1.5) < 0.1
        # carphone's pixels are 128:117 (its SAR, kept in the output): the player shows it 193 px wide
        assert page.evaluate("document.getElementById('video').videoWidth") in (176, 193)
        page.evaluate("(() => { const v = document.getElementById('video'); v.muted = true; return v.play(); })()")
        page.wait_for_function("document.getElementById('video').currentTime > 0.5", timeout=30_000)
        # the player decoded both streams: the speech is in the video
        assert page.evaluate("document.getElementById('video').webkitAudioDecodedByteCount") > 0
        assert page.evaluate("document.getElementById('video').webkitDecodedFrameCount") > 5
        assert "happy" in page.text_content("#read")
        browser.close()


def test_the_page_shows_one_line_for_a_file_that_is_not_a_video(server, speech, tmp_path):
    pw, exe = _browser()
    _, url = server
    bad = tmp_path / "holiday.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(4000))  # not a video, whatever its name says
    with pw.sync_playwright() as p:
        browser, page = _open(p, exe, url, bad, speech)
        page.click("#go")
        page.wait_for_function("document.getElementById('error').textContent.length > 0", timeout=120_000)
        error = page.text_content("#error")
        assert "holiday.mp4" in error and "\n" not in error and "Traceback" not in error
        assert page.evaluate("document.getElementById('video').classList.contains('hidden')")
        browser.close()


def test_evp_ui_prints_its_address_serves_and_stops_on_ctrl_c(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    # started with SIGINT ignored, as a script's background job starts it (Python then never raises
    # KeyboardInterrupt by itself: the server ran on after Ctrl-C until `evp ui` put the handler back)
    proc = subprocess.Popen([sys.executable, "-m", "evpcli", "-w", str(tmp_path / "ws"), "ui", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = proc.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert m, line
        assert "happy" in _get(m.group(1) + "api/info")["emotions"]
        assert any(p.name.startswith("evp-ui-") for p in tmp_path.iterdir())
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    assert rc == 130
    assert not any(p.name.startswith("evp-ui-") for p in tmp_path.iterdir())  # its temporary folder is gone
