"""train.py: short CPU runs on a small synthetic benchmark with a micro model.

The `tiny` preset is swapped for a micro model (in process through monkeypatch, in subprocesses
through a wrapper script) so that every run takes seconds on 2 cores; nothing else is faked.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import codeplan  # noqa: E402
import data  # noqa: E402
import model  # noqa: E402
import train  # noqa: E402

from conftest import MICRO  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

WRAPPER = """import sys
sys.path.insert(0, {root!r})
import model
model.PRESETS["tiny"] = {micro!r}
import train
train.main()
"""


@pytest.fixture(autouse=True)
def micro_preset(monkeypatch):
    monkeypatch.setitem(model.PRESETS, "tiny", MICRO)


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wrapper") / "train_micro.py"
    path.write_text(WRAPPER.format(root=str(ROOT), micro=MICRO))
    return path


def args(spec: str, out: Path, name: str, *extra: str) -> list[str]:
    return ["--data", spec, "--out", str(out), "--name", name, "--device", "cpu", "--steps", "6",
            "--batch-size", "8", "--vocab-size", "400", "--max-source-len", "128", "--max-target-len", "64",
            "--lr", "3e-3", "--warmup", "2", "--log-interval", "1", "--eval-interval", "3", "--eval-examples", "8",
            "--save-interval", "3", "--pass1-limit", "-1", *extra]


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def train_records(run: Path) -> list[dict]:
    return [r for r in records(run) if "loss" in r]


def subprocess_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


# ----------------------------------------------------------------------------- a short run

def test_short_run_writes_the_run_folder_and_loss_falls(spec, tmp_path):
    train.main(args(spec, tmp_path, "run", "--steps", "10", "--pass1-limit", "3"))
    run = tmp_path / "run"
    for name in ("config.json", "tokenizer.model", "plans.jsonl", "metrics.jsonl", "last.pt", "best.pt", "summary.json"):
        assert (run / name).exists(), name
    assert not list(run.glob("*.tmp"))
    config = json.loads((run / "config.json").read_text())
    assert config["lam"] == 0.5 and config["data"] == spec and config["world_size"] == 1
    logged = train_records(run)
    assert [r["step"] for r in logged] == list(range(1, 11))
    assert all({"loss_code", "loss_plan", "lr", "grad_norm", "tokens_per_s", "eta_s"} <= r.keys() for r in logged)
    assert logged[-1]["loss"] < logged[0]["loss"] and logged[-1]["loss_code"] < logged[0]["loss_code"]
    assert all(r["loss"] == pytest.approx(0.5 * r["loss_code"] + 0.5 * r["loss_plan"]) for r in logged)
    valid = [r for r in records(run) if "valid_code" in r]
    assert [r["step"] for r in valid] == [3, 6, 9, 10] and all("valid_plan" in r for r in valid)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 10 and summary["best_valid_code"] == pytest.approx(min(r["valid_code"] for r in valid))
    assert summary["valid_problems"] == 3 and 0.0 <= summary["valid_pass1"] <= 1.0
    last = torch.load(run / "last.pt", weights_only=False)
    best = torch.load(run / "best.pt", weights_only=False)
    assert last["step"] == 10 and last["tokenizer"] == (run / "tokenizer.model").read_bytes()
    assert best["best_valid_code"] == summary["best_valid_code"]
    assert {"model", "optimizer", "scaler", "rng", "config", "model_config"} <= last.keys()
    # the learning rate follows warm-up then cosine decay to lr * min_lr_ratio
    assert logged[0]["lr"] == pytest.approx(1.5e-3) and logged[1]["lr"] == pytest.approx(3e-3)
    assert logged[-1]["lr"] < logged[2]["lr"]


def test_refuses_to_overwrite_a_run_without_resume(spec, tmp_path):
    train.main(args(spec, tmp_path, "run", "--steps", "2"))
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "run", "--steps", "2"))
    assert e.value.code != 0 and "--resume" in str(e.value)
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "fresh", "--resume"))
    assert e.value.code != 0 and "no checkpoint" in str(e.value)


def test_resume_gives_the_same_losses_as_a_straight_run(spec, tmp_path):
    # dropout on, so that restoring the RNG state is what makes the losses match
    extra = ("--dropout", "0.1", "--eval-interval", "2")
    train.main(args(spec, tmp_path, "straight", *extra))
    train.main(args(spec, tmp_path, "split", *extra, "--stop-after", "3"))
    assert json.loads((tmp_path / "split" / "summary.json").read_text())["step"] == 3
    train.main(args(spec, tmp_path, "split", *extra, "--resume"))
    straight, split = records(tmp_path / "straight"), records(tmp_path / "split")
    assert [r["step"] for r in straight] == [r["step"] for r in split]
    keys = ("loss", "loss_code", "loss_plan", "grad_norm", "lr", "valid_code", "valid_plan")
    for a, b in zip(straight, split):
        assert a.keys() == b.keys()
        for k in keys:
            if k in a:
                assert abs(a[k] - b[k]) <= 1e-6, (a["step"], k, a[k], b[k])
    one = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)["model"]
    two = torch.load(tmp_path / "split" / "last.pt", weights_only=False)["model"]
    assert all(torch.allclose(one[k], two[k], atol=1e-6) for k in one)
    # dropout really drew random numbers: without it the run differs
    train.main(args(spec, tmp_path, "nodrop", "--eval-interval", "2"))
    assert abs(train_records(tmp_path / "nodrop")[0]["loss"] - train_records(tmp_path / "straight")[0]["loss"]) > 1e-4


def test_resume_with_only_the_name_continues_the_run_as_configured(spec, tmp_path):
    train.main(args(spec, tmp_path, "r", "--lambda", "0", "--stop-after", "2"))
    with pytest.raises(SystemExit) as e:
        train.main(["--out", str(tmp_path), "--name", "r", "--resume", "--lambda", "0.7"])
    assert "--lambda 0.7" in str(e.value)
    # every run flag (data, lambda, steps, batch, lengths, ...) comes from the run, not from the defaults
    train.main(["--out", str(tmp_path), "--name", "r", "--resume", "--device", "cpu", "--pass1-limit", "-1"])
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["lam"] == 0 and config["data"] == spec and config["steps"] == 6 and config["batch_size"] == 8
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["step"] == 6
    assert all("loss_plan" not in r for r in train_records(tmp_path / "r"))


def test_lambda_zero_leaves_the_plan_head_as_initialised(spec, tmp_path):
    train.main(args(spec, tmp_path, "base", "--lambda", "0", "--steps", "4"))
    run = tmp_path / "base"
    assert not (run / "plans.jsonl").exists()
    assert all("loss_plan" not in r for r in train_records(run))
    assert all("valid_code" in r for r in records(run) if "loss" not in r)
    state = torch.load(run / "last.pt", weights_only=False)
    torch.manual_seed(0)
    fresh = model.CodePlanModel(model.ModelConfig(**state["model_config"])).state_dict()
    trained = state["model"]
    assert torch.equal(trained["plan_head.weight"], fresh["plan_head.weight"])
    assert not torch.equal(trained["embedding.weight"], fresh["embedding.weight"])   # the code path did train


def test_every_batch_is_full_and_an_epoch_visits_each_example_once(spec):
    cfg = train.TrainConfig(batch_size=6, seed=3)
    problems = data.load_problems(spec, "train")
    examples = codeplan.make_examples(problems, {}, "shortest")
    cache = {}
    per_epoch = len(examples) // 6          # 200 examples: 33 full batches, the remainder of 2 dropped
    epoch = [train.batch_at(step, examples, cfg, cache) for step in range(per_epoch)]
    assert all(len(b) == 6 for b in epoch)
    flat = [i for b in epoch for i in b]
    assert len(set(flat)) == len(flat) == per_epoch * 6
    assert train.batch_at(per_epoch, examples, cfg, cache) != epoch[0]   # the next epoch reshuffles
    assert train.batch_at(5, examples, cfg, {}) == epoch[5]              # a pure function of the step


def test_uneven_last_batch_with_accumulation_trains(spec, tmp_path):
    # 200 examples in batches of 6 leave a remainder of 2; split over 3 micro-batches it used to
    # leave one empty and crash; 34 steps cover the whole epoch
    train.main(args(spec, tmp_path, "accum", "--batch-size", "6", "--grad-accum", "3", "--steps", "34",
                    "--log-interval", "34", "--eval-interval", "100", "--max-source-len", "48", "--max-target-len", "24"))
    assert json.loads((tmp_path / "accum" / "summary.json").read_text())["step"] == 34


def test_bad_data_spec_and_missing_plans_exit_2(spec, tmp_path, capsys):
    for bad, message in ((["--data", "nosuch"], "unknown dataset 'nosuch'"),
                         (["--data", f"synthetic:{tmp_path / 'missing.jsonl'}"], "missing.jsonl"),
                         (["--plans", str(tmp_path / "no-plans.jsonl")], "no-plans.jsonl")):
        with pytest.raises(SystemExit) as e:
            train.main(args(spec, tmp_path, "bad", "--steps", "1") + bad)
        err = capsys.readouterr().err
        assert e.value.code == 2 and message in err and "Traceback" not in err, err


APPS = ROOT.parent / "shared" / "data" / "apps" / "original"


@pytest.mark.skipif(not (APPS / "train").is_dir(), reason="../shared/data is absent")
def test_apps_trains_with_a_held_out_valid_slice_and_needs_plans_for_lambda(tmp_path, capsys):
    # APPS has no valid split: a slice of train is held out; it has no reference plans either
    spec = f"apps:{APPS}"
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "plans", "--steps", "1", "--batch-size", "2", "--vocab-size", "600"))
    assert e.value.code == 2 and "reference_plan" in capsys.readouterr().err
    train.main(args(spec, tmp_path, "apps", "--lambda", "0", "--steps", "2", "--batch-size", "2", "--vocab-size", "600",
                    "--eval-interval", "2", "--pass1-limit", "0"))
    summary = json.loads((tmp_path / "apps" / "summary.json").read_text())
    assert summary["step"] == 2 and summary["valid_problems"] == 1
    assert any("valid_code" in r for r in records(tmp_path / "apps"))


# ----------------------------------------------------------------------------- subprocesses

def test_sigint_saves_and_exits_130_and_resume_continues(spec, tmp_path, wrapper):
    cmd = [sys.executable, str(wrapper), *args(spec, tmp_path, "sig", "--steps", "100000", "--save-interval", "100000",
                                               "--eval-interval", "100000")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "sig" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: saved" in err
    step = torch.load(tmp_path / "sig" / "last.pt", weights_only=False)["step"]
    summary = json.loads((tmp_path / "sig" / "summary.json").read_text())
    assert summary["interrupted"] and summary["step"] == step >= 1
    done = subprocess.run(cmd + ["--resume", "--stop-after", str(step + 2)], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resumed {tmp_path / 'sig' / 'last.pt'} at step {step}" in done.stderr
    assert torch.load(tmp_path / "sig" / "last.pt", weights_only=False)["step"] == step + 2
    steps = [r["step"] for r in train_records(tmp_path / "sig")]
    assert steps == sorted(set(steps)) and steps[-1] == step + 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_match_one_process_with_the_same_global_batch(spec, tmp_path, wrapper):
    # Two ranks with 4 examples each equal one process accumulating two micro-batches of 4: the same
    # examples per micro-batch (rank r and micro-batch r both take batch[r::2]), the same averaged
    # gradient, and the logged loss is the mean of the two shards' token means in both cases.
    # Plans always in the code input, so that the per-rank plan draws cannot differ.
    common = args(spec, tmp_path, "x", "--steps", "3", "--plan-in-code", "1", "--eval-interval", "100")
    common = common[:common.index("--name")] + common[common.index("--name") + 2:]
    single = subprocess.run([sys.executable, str(wrapper), *common, "--name", "single", "--grad-accum", "2"],
                            cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
                          f"--master_port={free_port()}", str(wrapper), *common, "--name", "ddp"],
                         cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    one, two = train_records(tmp_path / "single"), train_records(tmp_path / "ddp")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two):
        for k in ("loss_code", "loss_plan", "grad_norm"):
            assert a[k] == pytest.approx(b[k], abs=1e-4), (a["step"], k)
    assert (tmp_path / "ddp" / "last.pt").exists()


def test_ddp_ctrl_c_stops_every_rank_after_the_same_step_and_saves(spec, tmp_path, wrapper):
    # Ctrl-C in a terminal signals the whole process group: torchrun and both ranks
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           f"--master_port={free_port()}", str(wrapper),
           *args(spec, tmp_path, "ddpsig", "--steps", "100000", "--save-interval", "100000", "--eval-interval", "100000")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    metrics = tmp_path / "ddpsig" / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)     # no rank left waiting in an all-reduce
    assert "interrupted: saved" in err, err[-3000:]
    step = torch.load(tmp_path / "ddpsig" / "last.pt", weights_only=False)["step"]
    summary = json.loads((tmp_path / "ddpsig" / "summary.json").read_text())
    assert summary["interrupted"] and summary["step"] == step >= 1
