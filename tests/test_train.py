"""train.py: short CPU runs on a small synthetic benchmark with a micro model.

The `tiny` preset is swapped for a micro model (in process through monkeypatch, in subprocesses
through a wrapper script) so that every run takes seconds on 2 cores; nothing else is faked.
"""
import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import checkpoint  # noqa: E402
import codeplan  # noqa: E402
import data  # noqa: E402
import flops  # noqa: E402
import model  # noqa: E402
import sample  # noqa: E402
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

def git_head() -> dict:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return head.stdout.strip() if head.returncode == 0 else "unknown"


def test_short_run_writes_the_run_folder_and_loss_falls(spec, tmp_path, capsys):
    train.main(args(spec, tmp_path, "run", "--steps", "10", "--pass1-limit", "3"))
    err = capsys.readouterr().err
    run = tmp_path / "run"
    for name in ("config.json", "tokenizer.model", "plans.jsonl", "metrics.jsonl", "last.pt", "best.pt", "summary.json"):
        assert (run / name).exists(), name
    assert not list(run.glob("*.tmp"))
    config = json.loads((run / "config.json").read_text())
    assert config["lam"] == 0.5 and config["data"] == spec and config["world_size"] == 1
    # the resolved per-device defaults and the code's commit are recorded
    assert (config["preset"], config["batch_size"], config["warmup"]) == ("tiny", 8, 2)
    assert config["commit"] == git_head() and isinstance(config["dirty"], bool)
    # every train example of the synthetic benchmark has its reference plan
    assert "plans: 200/200 train examples (100.0%) have a plan from reference" in err
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
    # the counters other tools read: 10 steps of 8 problems, each with a code and a plan example
    assert summary["optimizer_steps"] == 10 and summary["skipped_steps"] == 0
    assert summary["code_examples_seen"] == summary["plan_examples_seen"] == 80
    # about --plan-in-code of the code inputs held a plan (binomial: 72 expected of 80 at 0.9), counted apart from truncations
    assert 60 <= summary["code_with_plan_seen"] < 80 and "code_with_plan" not in summary["truncated"]
    assert summary["train_flops"] > 0 and summary["train_seconds"] > 0
    assert summary["commit"] == config["commit"] and summary["dirty"] == config["dirty"]
    last = checkpoint.load(run / "last.pt")
    best = checkpoint.load(run / "best.pt")
    assert last["step"] == 10 and last["tokenizer"] == (run / "tokenizer.model").read_bytes()
    assert best["best_valid_code"] == summary["best_valid_code"]
    assert {"model", "optimizer", "scaler", "rng", "config", "model_config"} <= last.keys()
    # the learning rate follows warm-up then cosine decay to lr * min_lr_ratio
    assert logged[0]["lr"] == pytest.approx(1.5e-3) and logged[1]["lr"] == pytest.approx(3e-3)
    assert logged[-1]["lr"] < logged[2]["lr"]


def test_the_checkpoint_records_the_longest_targets_and_pass1_decodes_to_the_code_cap(spec, tmp_path, monkeypatch, capsys):
    import teacher
    from problems import choose_solutions
    from tokenizer import load_tokenizer
    limits = []
    generate_texts = codeplan.generate_texts

    def recorded(*args, **kwargs):
        limits.append((args[3], kwargs["max_new_tokens"]))
        return generate_texts(*args, **kwargs)
    monkeypatch.setattr(codeplan, "generate_texts", recorded)
    # a target limit far above any program here, so that the cap, not the limit, ends the final pass@1's programs
    train.main(args(spec, tmp_path, "run", "--steps", "2", "--max-target-len", "1000", "--pass1-limit", "2"))
    run = tmp_path / "run"
    tokenizer, problems = load_tokenizer(run / "tokenizer.model"), data.load_problems(spec, "train")
    plans = teacher.read_plans(str(run / "plans.jsonl"), problems)
    # every train problem's shortest solution is a code target, every plan a plan target; EOS counts
    expected = {"code": max(len(tokenizer.encode(choose_solutions(p, 1)[0][1])) + 1 for p in problems),
                "plan": max(len(tokenizer.encode(plan)) + 1 for pls in plans.values() for plan in pls)}
    assert all(20 < n < 500 for n in expected.values())
    assert json.loads((run / "summary.json").read_text())["longest_target"] == expected
    for name in ("last.pt", "best.pt"):
        assert checkpoint.load(run / name)["longest_target"] == expected
    code_cap = math.ceil(expected["code"] * 1.25) + 8
    assert limits == [("code", code_cap)]      # one batch of 2 valid problems, greedy direct code
    caps = f"decoding caps: code {code_cap}, plan {math.ceil(expected['plan'] * 1.25) + 8}"
    assert caps in capsys.readouterr().err


def test_refuses_to_overwrite_a_run_without_resume(spec, tmp_path, capsys):
    train.main(args(spec, tmp_path, "run", "--steps", "2"))
    before = (tmp_path / "run" / "metrics.jsonl").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "run", "--steps", "2"))
    assert e.value.code == 2 and "--resume" in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == before
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "fresh", "--resume"))
    assert e.value.code == 2 and "no checkpoint" in capsys.readouterr().err


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
    # the run's counters continue over the resume: the same as the straight run's
    counted = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("straight", "split")]
    for k in ("optimizer_steps", "code_examples_seen", "plan_examples_seen", "train_flops"):
        assert counted[0][k] == counted[1][k], k
    assert counted[0]["longest_target"] == counted[1]["longest_target"]
    one, two = (checkpoint.load(tmp_path / run / "last.pt") for run in ("straight", "split"))
    assert one["longest_target"] == two["longest_target"] and set(one["longest_target"]) == {"code", "plan"}
    one, two = one["model"], two["model"]
    assert all(torch.allclose(one[k], two[k], atol=1e-6) for k in one)
    # dropout really drew random numbers: without it the run differs
    train.main(args(spec, tmp_path, "nodrop", "--eval-interval", "2"))
    assert abs(train_records(tmp_path / "nodrop")[0]["loss"] - train_records(tmp_path / "straight")[0]["loss"]) > 1e-4


def test_resume_with_only_the_name_continues_the_run_as_configured(spec, tmp_path, capsys):
    train.main(args(spec, tmp_path, "r", "--lambda", "0", "--stop-after", "2"))
    first = json.loads((tmp_path / "r" / "summary.json").read_text())
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        train.main(["--out", str(tmp_path), "--name", "r", "--resume", "--lambda", "0.7"])
    assert e.value.code == 2 and "--lambda 0.7" in capsys.readouterr().err
    # every run flag (data, lambda, steps, batch, lengths, ...) comes from the run, not from the defaults
    train.main(["--out", str(tmp_path), "--name", "r", "--resume", "--device", "cpu", "--pass1-limit", "-1"])
    taken = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("--resume: taken from the saved run:"))
    for flag in ("--lambda 0", "--steps 6", "--batch-size 8", f"--data {spec}", "--lr 0.003", "--preset tiny", "--warmup 2"):
        assert f" {flag} " in taken + " ", (flag, taken)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["lam"] == 0 and config["data"] == spec and config["steps"] == 6 and config["batch_size"] == 8
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["step"] == 6
    # the counters continue over the resume: 6 steps of 8 code examples, no plan example at lambda 0
    assert summary["code_examples_seen"] == 48 and summary["plan_examples_seen"] == summary["code_with_plan_seen"] == 0
    assert summary["train_flops"] > first["train_flops"]
    assert summary["train_seconds"] > first["train_seconds"]
    assert all("loss_plan" not in r for r in train_records(tmp_path / "r"))


def test_lambda_zero_leaves_the_plan_head_as_initialised(spec, tmp_path, capsys):
    train.main(args(spec, tmp_path, "base", "--lambda", "0", "--steps", "4"))
    err = capsys.readouterr().err
    run = tmp_path / "base"
    assert not (run / "plans.jsonl").exists()
    assert all("loss_plan" not in r for r in train_records(run))
    assert all("valid_code" in r and "valid_plan" not in r for r in records(run) if "loss" not in r)
    # no plan loss anywhere in the log: the plan head is not trained
    assert "L_code" in err and "valid_code" in err and "L_plan" not in err and "valid_plan" not in err, err
    state = checkpoint.load(run / "last.pt")
    torch.manual_seed(0)
    fresh = model.CodePlanModel(model.ModelConfig(**state["model_config"])).state_dict()
    trained = state["model"]
    assert torch.equal(trained["plan_head.weight"], fresh["plan_head.weight"])
    assert list(state["longest_target"]) == ["code"]     # no plan was a target
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


# ----------------------------------------------------------------------------- defaults and FLOPs

def test_defaults_depend_on_the_device_and_preset_and_show_in_help(capsys):
    given = train.parse_args([])
    assert (given.preset, given.steps, given.batch_size, given.lr, given.warmup) == (None,) * 5
    cpu = train.resolve_defaults(given, torch.device("cpu"))
    assert (cpu.preset, cpu.steps, cpu.batch_size, cpu.lr, cpu.warmup) == ("tiny", 400, 16, 7e-4, 40)
    cuda = train.resolve_defaults(given, torch.device("cuda"))
    assert (cuda.preset, cuda.steps, cuda.batch_size, cuda.lr, cuda.warmup) == ("small", 2000, 64, 5e-4, 100)
    # the learning rate follows the preset; a flag given wins
    assert train.resolve_defaults(train.parse_args(["--preset", "base"]), torch.device("cuda")).lr == 3e-4
    assert train.resolve_defaults(train.parse_args(["--preset", "small"]), torch.device("cpu")).lr == 5e-4
    mine = train.resolve_defaults(train.parse_args(["--lr", "1e-4", "--steps", "7"]), torch.device("cuda"))
    assert (mine.lr, mine.steps, mine.batch_size) == (1e-4, 7, 64)
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("default tiny on cpu, small on cuda", "default 400 on cpu, 2000 on cuda", "default 16 on cpu, 64 on cuda",
                  "tiny 0.0007, small 0.0005", "default 40 on cpu, 100 on cuda"):
        assert shown in text, shown


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size: 0 is not allowed: must be an integer >= 1"),
    (["--grad-accum", "0"], "--grad-accum: 0 is not allowed"),
    (["--steps", "-5"], "--steps: -5 is not allowed"),
    (["--log-interval", "0"], "--log-interval: 0 is not allowed"),
    (["--eval-interval", "0"], "--eval-interval: 0 is not allowed"),
    (["--save-interval", "0"], "--save-interval: 0 is not allowed"),
    (["--lr", "-1"], "--lr: -1 is not allowed: must be a number > 0"),
    (["--lr", "nan"], "--lr: nan is not allowed"),
    (["--lambda", "1.5"], "--lambda: 1.5 is not allowed: must be a number >= 0 and <= 1"),
    (["--plan-in-code", "-0.1"], "--plan-in-code: -0.1 is not allowed"),
    (["--dropout", "1"], "--dropout: 1 is not allowed: must be a number >= 0 and < 1"),
    (["--warmup", "-1"], "--warmup: -1 is not allowed"),
    (["--clip", "-1"], "--clip: -1 is not allowed"),
    (["--pass1-limit", "-2"], "--pass1-limit: -2 is not allowed"),
    (["--steps", "ten"], "--steps: 'ten' is not an integer"),
    (["--batch-size", "6", "--grad-accum", "4"], "--batch-size 6 must divide by world size x --grad-accum = 1 x 4"),
    (["--device", "cpu", "--grad-accum", "3"], "--batch-size 16 (the default on cpu) must divide by"),
])
def test_bad_flags_exit_2_on_one_line_before_anything_is_written(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(argv + ["--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


def test_every_config_field_is_a_flag_with_help(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = capsys.readouterr().out
    for f in dataclasses.fields(train.TrainConfig):
        assert train.flag_name(f.name) in text and f.metadata["help"].split()[0] in text, f.name


def test_flop_count_matches_torch_flop_counter_on_one_example():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    for feed_forward in ("relu", "gated-gelu"):
        config = model.ModelConfig(vocab_size=300, feed_forward=feed_forward, dropout=0.0, **MICRO)
        net = model.CodePlanModel(config, quiet=True)
        source, target = 37, 11
        ids = torch.randint(2, 300, (1, source))
        labels = torch.randint(2, 300, (1, target))
        # the math attention kernel runs as matmuls that the counter sees (the fused CPU kernel it does not count)
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            _, loss = net(ids, torch.ones_like(ids), labels=labels, head="plan")
            loss.backward()
        assert flops.example_flops(config, source, target) == pytest.approx(counter.get_total_flops(), rel=0.01), feed_forward


# ----------------------------------------------------------------------------- non-finite steps

def poison_training_losses(monkeypatch, bad_calls: set, how: str = "loss") -> list:
    """Make the loss (or, with how="grad", only its gradient) non-finite on the given training
    forward calls (0-based; with lambda 0.5 each step makes two calls: code, then plan)."""
    calls, forward = [], model.CodePlanModel.forward

    def poisoned(self, *a, **k):
        logits, loss = forward(self, *a, **k)
        if self.training:
            if len(calls) in bad_calls:
                if how == "loss":
                    loss = loss * float("nan")
                else:
                    loss.register_hook(lambda g: g * float("inf"))
            calls.append(len(calls))
        return logits, loss

    monkeypatch.setattr(model.CodePlanModel, "forward", poisoned)
    return calls


@pytest.mark.parametrize("how", ["loss", "grad"])
def test_a_non_finite_step_is_skipped_counted_and_changes_nothing(spec, tmp_path, monkeypatch, capsys, how):
    poison_training_losses(monkeypatch, {4} if how == "loss" else {5}, how)   # the third batch
    train.main(args(spec, tmp_path, "nan", "--eval-interval", "100"))
    err = capsys.readouterr().err
    run = tmp_path / "nan"
    assert ("step 3: non-finite loss" if how == "loss" else "step 3: non-finite gradient norm") in err, err
    assert "skipped (1 in a row, 1 in the run)" in err
    logged = train_records(run)
    # six optimizer steps all the same, each finite and each at the learning rate of its step
    assert [r["step"] for r in logged] == list(range(1, 7))
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in logged)
    cfg = train.TrainConfig(lr=3e-3, warmup=2, steps=6)
    assert [r["lr"] for r in logged] == pytest.approx([train.lr_at(s, cfg) for s in range(6)])
    assert [r.get("skipped_steps", 0) for r in logged] == [0, 0, 1, 0, 0, 0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["optimizer_steps"] == 6 and summary["skipped_steps"] == 1
    assert summary["code_examples_seen"] == 48          # the skipped batch is not counted as trained on
    state = checkpoint.load(run / "last.pt")
    # AdamW stepped six times, not seven: the skipped step never reached the optimizer
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {6}
    assert state["progress"]["skipped_steps"] == 1


def test_non_finite_steps_in_a_row_stop_the_run_and_keep_the_last_good_checkpoint(spec, tmp_path, monkeypatch, capsys):
    poison_training_losses(monkeypatch, set(range(6, 1000)))    # every batch from step 4 on
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "div", "--steps", "20", "--save-interval", "3", "--eval-interval", "100",
                        "--max-nonfinite-steps", "2"))
    err = capsys.readouterr().err
    assert e.value.code == 3
    run = tmp_path / "div"
    assert f"stopped: 2 steps in a row had a non-finite loss or gradient norm; the last good checkpoint is {run / 'last.pt'} (step 3)" in err
    assert "Traceback" not in err
    state = checkpoint.load(run / "last.pt")     # finite, or this would raise
    assert state["step"] == 3
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_nonfinite"] and summary["step"] == 3 and summary["skipped_steps"] == 2


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_errors_name_the_file(tmp_path, capsys):
    net = model.CodePlanModel(model.ModelConfig(vocab_size=50, **MICRO), quiet=True)
    good = tmp_path / "good.pt"
    checkpoint.save(good, {"model": net.state_dict(), "blob": b"x", "rng": (1, (2, 3), None)})
    assert torch.load(good, weights_only=True)["blob"] == b"x"       # plain values only
    assert torch.equal(checkpoint.load(good)["model"]["embedding.weight"], net.embedding.weight)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"
    foreign.write_text("not a checkpoint")
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": net.state_dict(), "rng": np.random.get_state()}, pickled)   # as train.py used to save
    other = tmp_path / "other.pt"
    torch.save({"weights": net.state_dict()}, other)
    cases = {tmp_path / "missing.pt": "no such checkpoint file", cut: "truncated or foreign", foreign: "truncated or foreign",
             pickled: "refusing to unpickle it", other: "not a CodePLAN checkpoint"}
    for path, message in cases.items():
        with pytest.raises(model.CheckpointError) as e:
            checkpoint.load(path)
        assert str(e.value).startswith(f"{path}: ") and message in str(e.value) and "\n" not in str(e.value)
    # non-finite weights are neither saved nor loaded
    state = net.state_dict()
    state["decoder.final_norm.weight"][0] = float("nan")
    with pytest.raises(model.CheckpointError, match="not saved: non-finite weights in decoder.final_norm.weight"):
        checkpoint.save(tmp_path / "nan.pt", {"model": state})
    assert not (tmp_path / "nan.pt").exists() and not list(tmp_path.glob(".nan.pt*"))
    nan = tmp_path / "nan.pt"
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "model": state}, nan)
    with pytest.raises(model.CheckpointError, match="non-finite weights in decoder.final_norm.weight"):
        checkpoint.load(nan)
    # sample.py says the same in one line, without a traceback
    for path in (tmp_path / "missing.pt", cut, nan):
        with pytest.raises(SystemExit) as e:
            sample.main(["--checkpoint", str(path), "--device", "cpu"])
        assert str(e.value).startswith(f"sample.py: {path}: ")


def test_generate_refuses_non_finite_logits_with_a_plain_error():
    net = model.CodePlanModel(model.ModelConfig(vocab_size=50, dropout=0.0, **MICRO), quiet=True)
    with torch.no_grad():
        net.plan_head.weight[3, 0] = float("inf")
    ids = torch.randint(2, 50, (2, 5))
    tokens, _ = net.generate(ids, torch.ones_like(ids), head="code", max_new_tokens=4, temperature=0.8)   # the code head is fine
    assert len(tokens) == 2
    for temperature in (0.0, 0.8):
        with pytest.raises(FloatingPointError, match="plan head gave non-finite logits"):
            net.generate(ids, torch.ones_like(ids), head="plan", max_new_tokens=4, temperature=temperature, top_p=0.9)


def test_plans_that_match_no_train_example_are_refused(spec, tmp_path, capsys):
    plans = tmp_path / "other-plans.jsonl"
    plans.write_text(json.dumps({"task_id": "no-such-task", "plan": "1. do it", "status": "ok", "mode": "backward",
                                 "model": "m", "prompt_version": 1, "solution_index": 0}) + "\n")
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "noplans", "--steps", "1", "--plans", str(plans)))
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{plans}: no plan matches any of the 200 train examples" in err and "Traceback" not in err


APPS = ROOT.parent / "shared" / "data" / "apps" / "original"


@pytest.mark.skipif(not (APPS / "train").is_dir(), reason="../shared/data is absent")
def test_apps_trains_with_a_held_out_valid_slice_and_needs_plans_for_lambda(tmp_path, capsys):
    # APPS has no valid split: a slice of train is held out; it has no reference plans either
    spec = f"apps:{APPS}"
    with pytest.raises(SystemExit) as e:
        train.main(args(spec, tmp_path, "plans", "--steps", "1", "--batch-size", "2", "--vocab-size", "600"))
    err = capsys.readouterr().err
    assert e.value.code == 2 and "have no reference plan" in err and "pass --plans FILE" in err and "--lambda 0" in err
    assert not (tmp_path / "plans").exists()     # the refused run leaves no folder behind
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
    deadline = time.time() + 600   # generous: a loaded 2-core machine can take minutes to start torch
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: saved" in err
    assert "Ctrl-C: stopping after this step and saving last.pt" in err     # acknowledged before the step ends
    step = checkpoint.load(tmp_path / "sig" / "last.pt")["step"]
    summary = json.loads((tmp_path / "sig" / "summary.json").read_text())
    assert summary["interrupted"] and summary["step"] == step >= 1
    done = subprocess.run(cmd + ["--resume", "--stop-after", str(step + 2)], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"resumed {tmp_path / 'sig' / 'last.pt'} at step {step}" in done.stderr
    assert checkpoint.load(tmp_path / "sig" / "last.pt")["step"] == step + 2
    steps = [r["step"] for r in train_records(tmp_path / "sig")]
    assert steps == sorted(set(steps)) and steps[-1] == step + 2


PAUSED = """import os, sys, time
sys.path.insert(0, {root!r})
import model
model.PRESETS["tiny"] = {micro!r}
import batching, sandbox, train

def paused(*args, **kwargs):
    open({flag!r}, "w").close()   # the step under test has begun: stay here until the test presses Ctrl-C
    time.sleep(3600)
{target} = paused
train.main()
"""


def ctrl_c_while_paused(target: str, flags: list[str], tmp_path: Path) -> tuple[int, str]:
    """Run train.py with `target` replaced by a pause, press Ctrl-C there; the exit code and stderr."""
    wrapper, flag = tmp_path / "paused.py", tmp_path / "paused"
    wrapper.write_text(PAUSED.format(root=str(ROOT), micro=MICRO, flag=str(flag), target=target))
    proc = subprocess.Popen([sys.executable, str(wrapper), *flags], cwd=tmp_path, env=subprocess_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600   # generous: a loaded 2-core machine can take minutes to start torch
        while not flag.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert flag.exists(), proc.communicate()[1][-3000:] if proc.poll() is not None else "timed out"
        os.killpg(proc.pid, signal.SIGINT)   # what a terminal's Ctrl-C does: the whole process group
        err = proc.communicate(timeout=300)[1]
        return proc.returncode, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)


def test_ctrl_c_while_tokenising_stops_at_once(spec, tmp_path):
    code, err = ctrl_c_while_paused("batching.TokenCache._encode_all", args(spec, tmp_path, "tok"), tmp_path)
    assert code == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "train.py: interrupted at once; nothing was trained yet: rerun the same command"


def test_ctrl_c_in_the_final_pass1_writes_the_summary_and_resume_computes_it(spec, tmp_path):
    flags = args(spec, tmp_path, "p1", "--steps", "2", "--pass1-limit", "4")
    code, err = ctrl_c_while_paused("sandbox.evaluate_many", flags, tmp_path)
    assert code == 130, err
    assert "final pass@1: generated 4/4 programs" in err and "Traceback" not in err
    assert "interrupted in the final pass@1: training finished" in err
    summary = json.loads((tmp_path / "p1" / "summary.json").read_text())
    assert summary["interrupted"] and summary["training_finished"] and summary["step"] == 2 and "valid_pass1" not in summary
    assert sample.finished_run_checkpoint(tmp_path) == tmp_path / "p1" / "best.pt"
    # --resume restores what is evaluated (--pass1-limit 4), and computes the missing pass@1
    train.main(["--out", str(tmp_path), "--name", "p1", "--resume"])
    summary = json.loads((tmp_path / "p1" / "summary.json").read_text())
    assert summary["valid_problems"] == 4 and "interrupted" not in summary


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
    deadline = time.time() + 600   # generous: a loaded 2-core machine can take minutes to start torch
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=600)     # no rank left waiting in an all-reduce
    assert "interrupted: saved" in err, err[-3000:]
    step = checkpoint.load(tmp_path / "ddpsig" / "last.pt")["step"]
    summary = json.loads((tmp_path / "ddpsig" / "summary.json").read_text())
    assert summary["interrupted"] and summary["step"] == step >= 1


def test_ddp_runs_end_cleanly_every_time(spec, tmp_path, wrapper):
    # A finished two-rank run used to fail now and then: rank 1 left right after its last collective and
    # aborted at exit ("terminate called without an active exception", see ddp.close_distributed).
    # Rank 0 evaluates and saves after the last step, so rank 1 reaches the end first in every run.
    for i in range(3):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1", f"--master_port={free_port()}",
               str(wrapper), *args(spec, tmp_path, f"ddp{i}", "--steps", "2", "--eval-interval", "2", "--save-interval", "2",
                                   "--max-source-len", "48", "--max-target-len", "24")]
        done = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr[-3000:]
        assert json.loads((tmp_path / f"ddp{i}" / "summary.json").read_text())["step"] == 2


# ----------------------------------------------------------------------------- CUDA (skipped without a GPU)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_bf16_training_on_cuda_stays_finite_and_the_loss_falls_and_samples(spec, tmp_path):
    train.main(args(spec, tmp_path, "gpu", "--device", "cuda", "--amp", "bf16", "--steps", "40", "--log-interval", "10",
                    "--eval-interval", "40", "--save-interval", "40"))
    run = tmp_path / "gpu"
    assert json.loads((run / "config.json").read_text())["amp"] == "bf16"
    logged = train_records(run)
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in logged)
    assert logged[-1]["loss"] < logged[0]["loss"]
    assert json.loads((run / "summary.json").read_text())["skipped_steps"] == 0
    # sampling on the checkpoint of a bf16 run: plans and programs decode, the report is written
    sample.main(["--checkpoint", str(run / "last.pt"), "--device", "cuda", "--n", "2", "--limit", "4",
                 "--max-new-tokens", "32", "--out", str(tmp_path / "samples")])
    assert "| all | 4 |" in (tmp_path / "samples" / "report.md").read_text()
    rows = [json.loads(line) for line in (tmp_path / "samples" / "samples.jsonl").read_text().splitlines()]
    assert len({r["task_id"] for r in rows}) == 4 and all(r["plan"] for r in rows)
