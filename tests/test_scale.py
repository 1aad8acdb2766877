"""Running the stages at scale: Ray executors (prepare-dataset, build-pairs, batch-render) and torchrun training.

One tiny synthetic corpus (1 actor, neutral and happy, 3 sentences, 128 px: 6 clips) prepared and paired locally
with ``--jobs 2`` is the reference; Ray (a local in-process cluster of 2 CPUs) must give the same artifacts, and two
torchrun processes train on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evpcli.cli import main
from evpcli.workspace import KIND_LANDMARKS, KIND_MFCC, KIND_PAIRS, Workspace

ROOT = Path(__file__).resolve().parents[1]
KINDS = (KIND_MFCC, KIND_LANDMARKS, KIND_PAIRS)


@pytest.fixture(scope="module")
def corpus_ws(tmp_path_factory) -> dict:
    """The corpus and a workspace prepared and paired by the local executor with ``--jobs 2`` (copy before
    changing it)."""
    from evpcli.corpus.synth import synth_corpus

    root = tmp_path_factory.mktemp("scale")
    synth_corpus(root / "corpus", actors=1, sentences=3, emotions=["neutral", "happy"], levels=(3,), size=128, seed=0,
                 jobs=2)
    ws = root / "local"
    assert main(["-q", "-w", str(ws), "prepare-dataset", str(root / "corpus"), "--jobs", "2"]) == 0
    assert main(["-q", "-w", str(ws), "build-pairs", "--jobs", "2"]) == 0
    return {"root": root, "corpus": root / "corpus", "ws": ws}


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of 2 CPUs in this process; evp's Ray executor uses it instead of starting its own."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _artifacts(root: Path) -> dict:
    """{(kind, key): (file name, {array name: array})} of the workspace's clip and pair artifacts, and the clips."""
    ws = Workspace(root)
    out = {}
    for kind in KINDS:
        for a in ws.artifacts(kind):
            with np.load(a["path"], allow_pickle=False) as z:
                out[(kind, a["key"])] = (Path(a["path"]).name, {k: z[k] for k in z.files})
    clips = sorted((c.clip_id, c.status, c.n_frames, c.extra.get("mfcc_key"), c.extra.get("landmarks_key"))
                   for c in ws.clips(status=None))
    ws.close()
    return {"artifacts": out, "clips": clips}


def _assert_same(a: dict, b: dict) -> None:
    assert a["clips"] == b["clips"]
    assert sorted(a["artifacts"]) == sorted(b["artifacts"])  # the same cache keys
    for k, (name, arrays) in a["artifacts"].items():
        other_name, other = b["artifacts"][k]
        assert name == other_name and sorted(arrays) == sorted(other), k
        for field, x in arrays.items():
            assert np.array_equal(x, other[field]), (k, field)


def test_ray_prepares_and_pairs_the_same_artifacts_as_jobs_2(corpus_ws, ray_cluster, tmp_path):
    ws = tmp_path / "ray"
    args = ["-q", "-w", str(ws)]
    code = main([*args, "prepare-dataset", str(corpus_ws["corpus"]), "--executor", "ray", "--jobs", "2"])
    assert code == 0
    code = main([*args, "build-pairs", "--executor", "ray"])
    assert code == 0
    ours, ref = _artifacts(ws), _artifacts(corpus_ws["ws"])
    assert len(ref["artifacts"]) == 6 + 6 + 3 and all(c[1] == "ok" for c in ref["clips"])
    _assert_same(ours, ref)
    # a re-run on Ray finds everything cached: nothing is computed again
    assert main(["-q", "-w", str(ws), "prepare-dataset", str(corpus_ws["corpus"]), "--executor", "ray"]) == 0
    report = json.loads((ws / "prepare-report.json").read_text())
    assert report["prepared"] == 0 and report["cached"] == 6


def test_executor_ray_without_ray_is_one_usage_line(corpus_ws, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    ws = tmp_path / "ws"
    for argv in (["prepare-dataset", str(corpus_ws["corpus"]), "--executor", "ray"],
                 ["build-pairs", "--executor", "ray"],
                 ["prepare-dataset", str(corpus_ws["corpus"]), "--ray-address", "auto"]):
        capsys.readouterr()
        assert main(["-q", "-w", str(ws), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert ("pip install 'evpcli[ray]'" in err[0]) or ("--ray-address needs --executor ray" in err[0])
    assert not (ws / "index.sqlite").exists()  # refused before any work


def test_batch_render_finishes_the_good_jobs_reports_the_bad_one_and_resumes(corpus_ws, ray_cluster, tmp_path,
                                                                             arctic_wav, capsys):
    import soundfile as sf

    from evpcli import media

    speech = tmp_path / "speech.wav"
    sf.write(speech, media.load_audio(arctic_wav)[int(0.3 * 16000):int(1.5 * 16000)], 16000)
    target = corpus_ws["corpus"] / "M001" / "video" / "front" / "neutral" / "level_1" / "001.mp4"
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("audio,emotion,emotion_audio,target,out\n"
                    f"speech.wav,happy,,{target},out/happy.mp4\n"
                    f"missing.wav,sad,,{target},out/sad.mp4\n"
                    f"speech.wav,,speech.wav,{target},out/clip.mp4\n")
    ws = tmp_path / "ws"
    assert main(["-w", str(ws), "batch-render", str(jobs), "--executor", "ray", "--json"]) == 1
    r = json.loads(capsys.readouterr().out)
    assert (r["total"], r["rendered"], r["skipped"], r["ok"]) == (3, 2, 0, False)
    assert [(f["line"], Path(f["out"]).name) for f in r["failed"]] == [(3, "sad.mp4")]
    assert "missing.wav: file not found" in r["failed"][0]["reason"]
    made = {name: (tmp_path / "out" / name).stat().st_mtime_ns for name in ("happy.mp4", "clip.mp4")}
    assert media.probe(tmp_path / "out" / "happy.mp4").n_frames >= 25
    assert not (tmp_path / "out" / "sad.mp4").exists()
    assert len(Workspace(ws).artifacts("targets")) == 1  # the target was fitted once, by the driver
    # a re-run (local this time) skips the finished renders, still reports the bad row, and exits 1
    assert main(["-w", str(ws), "batch-render", str(jobs), "--json"]) == 1
    r = json.loads(capsys.readouterr().out)
    assert (r["rendered"], r["skipped"], len(r["failed"])) == (0, 2, 1)
    assert {n: (tmp_path / "out" / n).stat().st_mtime_ns for n in made} == made
    # fixed, the missing job renders and the batch succeeds
    shutil.copy(speech, tmp_path / "missing.wav")
    assert main(["-q", "-w", str(ws), "batch-render", str(jobs)]) == 0
    assert (tmp_path / "out" / "sad.mp4").stat().st_size > 0


def test_batch_render_bad_rows_fail_alone_and_a_bad_header_fails_the_run(tmp_path, capsys):
    from evpcli.render.batch import read_jobs

    (tmp_path / "a.wav").write_bytes(b"x")
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("audio,emotion,emotion_audio,target,out,intensity\n"
                    "a.wav,happy,,t.mp4,o1.mp4,\n"
                    "a.wav,,,t.mp4,o2.mp4,\n"
                    "a.wav,sad,a.wav,t.mp4,o3.mp4,\n"
                    "a.wav,sad,,t.mp4\n"
                    ",sad,,t.mp4,o5.mp4,\n"
                    "a.wav,sad,,t.mp4,o6.mp4,loud\n")
    good, bad = read_jobs(jobs)
    assert [j["line"] for j in good] == [2] and good[0]["audio"] == str(tmp_path / "a.wav")
    assert [(b["line"], b["reason"]) for b in bad] == [
        (3, "give exactly one of emotion or emotion_audio"),
        (4, "give exactly one of emotion or emotion_audio (both are filled)"),
        (5, "4 fields, the header has 6"),
        (6, "empty audio"),
        (7, "intensity 'loud' is not a number")]
    jobs.write_text("speech,emotion,target,out\na.wav,happy,t.mp4,o.mp4\n")
    assert main(["-q", "-w", str(tmp_path / "ws"), "batch-render", str(jobs)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the header lacks audio" in err[0]


# --------------------------------------------------------------------------- torchrun
def _torchrun(*args: str) -> dict:
    """``torchrun --standalone --nproc-per-node 2 ARGS`` on the CPU; rank 0's JSON result."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)  # rank 0 alone prints


def _torchrun_cli(ws: Path, *args: str) -> dict:
    """``torchrun ... -m evpcli -w WS ARGS --device cpu --json``: the evp command itself."""
    return _torchrun("-m", "evpcli", "-q", "-w", str(ws), *args, "--device", "cpu", "--json")


def _log(path: str) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_torchrun_disentangle_ranks_agree_and_resume_continues(corpus_ws, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(corpus_ws["ws"], ws)
    script = str(ROOT / "tests" / "ddp_disentangle.py")  # tiny network sizes (the CLI's are the paper's)
    r = _torchrun(script, str(ws), "1")
    dp = r["metrics"]["data_parallel"]
    assert dp["world_size"] == 2 and len(set(dp["rank_weight_sha256"])) == 1  # the same weights on both ranks
    assert r["start_epoch"] == 0 and len(_log(r["files"]["log_csv"])) == 1
    r2 = _torchrun(script, str(ws), "2", "--resume")
    assert r2["start_epoch"] == 1 and r2["epochs"] == 2 and r2["steps"] == 2
    assert len(set(r2["metrics"]["data_parallel"]["rank_weight_sha256"])) == 1
    rows = _log(r2["files"]["log_csv"])
    assert [row["epoch"] for row in rows] == ["1", "2"]  # one log, written by rank 0, continued
    assert rows[0]["loss"] == _log(r["files"]["log_csv"])[0]["loss"]
    assert sorted(p.name for p in (ws / "models").glob("disentangle-*.pt")) == \
        [Path(r["checkpoint"]).name, Path(r2["checkpoint"]).name]


def test_torchrun_audio2lm_two_ranks_reproduce_the_single_process_losses(corpus_ws, tmp_path):
    """Each rank trains its half of the batch one process would draw, gradients averaged: the same losses."""
    from evpcli.config import DisentangleTrainConfig
    from evpcli.train.disentangle import train_disentangle
    from tests.test_audio2lm import TINY_DIS

    ws = tmp_path / "ws"
    shutil.copytree(corpus_ws["ws"], ws)
    train_disentangle(Workspace(ws), DisentangleTrainConfig(epochs=1, steps_per_epoch=2, pretrain_steps=2,
                                                            batch_size=8, holdout_sentences=1, augment_copies=0,
                                                            eval_tuples=4), TINY_DIS, device="cpu")
    single = tmp_path / "single"
    shutil.copytree(ws, single)
    args = ["train", "--stage", "audio2lm", "--epochs", "1", "--steps-per-epoch", "3", "--batch-size", "8",
            "--augment-copies", "0"]
    r = _torchrun_cli(ws, *args)
    assert len(set(r["metrics"]["data_parallel"]["rank_weight_sha256"])) == 1
    assert main(["-q", "-w", str(single), *args, "--device", "cpu"]) == 0
    ddp = _log(r["files"]["log_csv"])[0]
    one = _log(next((single / "runs").glob("audio2lm-*-log.csv")))[0]
    for k in ("loss", "coeff_mse", "landmark_mse"):
        assert float(ddp[k]) == pytest.approx(float(one[k]), rel=1e-4), k


def test_ranks_split_a_batch_into_equal_contiguous_parts_and_refuse_an_odd_one():
    from evpcli.errors import UsageError
    from evpcli.train.distributed import Ranks, from_env

    batch = np.arange(12)
    assert np.array_equal(np.concatenate([batch[Ranks(3, r, r).shard(12)] for r in range(3)]), batch)
    assert Ranks().shard(12) == slice(0, 12) and not Ranks().distributed
    with pytest.raises(UsageError, match="use a multiple of 2"):
        Ranks(2, 1, 1).check_batch(7)
    Ranks().check_batch(7)  # one process takes any batch
    assert from_env() == Ranks()  # no torchrun variables here: one process
