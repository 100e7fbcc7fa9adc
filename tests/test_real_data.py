"""End to end on the real APPS files in ../shared/data (next to the checkout): teacher plans from a local
fake chat server, 3 training steps from a tiny pretrained folder with a byte-level BPE tokenizer (--init),
sample.py --n 2, and sandbox.py scoring of its samples. Skipped, with the reason printed, without the data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import data  # noqa: E402
import llm_client  # noqa: E402
import model  # noqa: E402
import pretrained  # noqa: E402
import sample  # noqa: E402
import teacher  # noqa: E402
import train  # noqa: E402
from problems import Problem, choose_solutions  # noqa: E402
from test_pretrained import tiny_t5_folder  # noqa: E402
from test_teacher import SECRET, FakeTeacher, fast_config  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

APPS = ROOT.parent / "shared" / "data" / "apps" / "original" / "train"
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytestmark = pytest.mark.usefixtures("one_thread")


class AnyStatementTeacher(FakeTeacher):
    """Real statements carry no [[marker]] to script the fake server: every request gets its "ok" answer."""

    def answer(self, handler, payload):
        payload["messages"][-1]["content"] += " [[ok]]"
        super().answer(handler, payload)


@pytest.fixture(scope="module")
def apps_spec() -> str:
    if not APPS.is_dir():
        reason = f"real APPS files not found at {APPS} (../shared/data next to the checkout)"
        print(f"skipping: {reason}")
        pytest.skip(reason)
    return f"apps:{APPS}"


def bpe_checkpoint_folder(problems: list[Problem], dest: Path) -> Path:
    """A tiny CodeT5-shaped folder: a byte-level BPE learned on the problems, and random T5 weights."""
    corpus = [p.question for p in problems] + [s for p in problems for s in p.solutions[:5]]
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator(corpus, vocab_size=600, min_frequency=2,
                                special_tokens=["<pad>", "<s>", "</s>", "<unk>", "<mask>"])
    plain = dest.parent / "bpe"
    plain.mkdir()
    trainer.save_model(str(plain))
    hf = transformers.RobertaTokenizer.from_pretrained(str(plain))
    return tiny_t5_folder(plain, dest, len(hf), pad=hf.pad_token_id, eos=hf.eos_token_id)


def test_teacher_train_sample_and_sandbox_on_real_apps(apps_spec, tmp_path, capsys):
    problems = data.load_problems(apps_spec, "train")
    assert len(problems) == 5 and all(p.solutions for p in problems)

    plans_path = tmp_path / "plans.jsonl"
    with AnyStatementTeacher() as server:
        config = fast_config(server.url)
        summary = teacher.run_teacher(problems, str(plans_path), config, llm_client.ChatClient(config, SECRET))
    assert summary.ok == 5
    plans = teacher.read_plans(str(plans_path))
    for p in problems:
        (index, _), = choose_solutions(p, 1)
        assert [pl.solution_index for pl in plans[p.id]] == [index]    # each plan knows the solution it explains

    folder = bpe_checkpoint_folder(problems, tmp_path / "tiny-codet5")
    runs = tmp_path / "runs"
    train.main(["--init", str(folder), "--data", apps_spec, "--plans", str(plans_path), "--out", str(runs),
                "--name", "e2e", "--device", "cpu", "--steps", "3", "--batch-size", "2", "--solutions", "shortest",
                "--max-source-len", "192", "--max-target-len", "48", "--warmup", "1", "--log-interval", "1",
                "--eval-interval", "3", "--eval-examples", "4", "--pass1-limit", "-1"])
    run = runs / "e2e"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3]
    assert all(m["loss_code"] > 0 and m["loss_plan"] > 0 for m in metrics if "loss" in m)
    summary = json.loads((run / "summary.json").read_text())
    # real statements and solutions are longer than these budgets: cuts happen and are counted
    assert summary["truncated"].get("code_source_truncated", 0) > 0 and summary["truncated"].get("code_target_truncated", 0) > 0
    assert (run / "tokenizer" / "vocab.json").read_bytes() == (folder / "vocab.json").read_bytes()
    tokenizer = pretrained.load_folder_tokenizer(run / "tokenizer")
    net, loaded, _, _ = sample.load_checkpoint(run / "last.pt", "cpu")
    assert net.config.vocab_size == tokenizer.vocab_size == len(transformers.RobertaTokenizer.from_pretrained(str(folder))) + 3
    assert loaded.encode(problems[0].solutions[0]) == tokenizer.encode(problems[0].solutions[0])

    out = tmp_path / "samples"
    sample.main(["--checkpoint", str(run / "last.pt"), "--data", apps_spec, "--split", "train", "--n", "2",
                 "--limit", "2", "--max-new-tokens", "16", "--workers", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "1@2" in printed and "pass@2" in printed
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    results = [json.loads(line) for line in (out / "samples_results.jsonl").read_text().splitlines()]
    assert sorted({s["task_id"] for s in samples}) == sorted(p.id for p in problems[:2])
    assert len(samples) == len(results) == 4 and all(s["plan"] for s in samples)

    rescore = tmp_path / "rescore"
    rescore.mkdir()
    (rescore / "samples.jsonl").write_bytes((out / "samples.jsonl").read_bytes())
    done = subprocess.run([sys.executable, "sandbox.py", "--data", apps_spec, "--samples", str(rescore / "samples.jsonl")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    again = [json.loads(line) for line in (rescore / "samples_results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["status"], r["passed"]) for r in again] == [(r["task_id"], r["status"], r["passed"]) for r in results]
    assert all(r["status"] for r in again)


def test_humaneval_programs_are_the_prompt_and_the_completion(tmp_path):
    path = ROOT.parent / "shared" / "data" / "humaneval" / "HumanEval.jsonl.gz"
    if not path.exists():
        print(f"skipping: {path} not found")
        pytest.skip(f"{path} not found")
    import codeplan
    import sandbox
    import torch
    problems = data.load_problems(f"humaneval:{path}", "test")[:3]
    tokenizer = Tokenizer.train([p.question + p.solutions[0] for p in data.load_problems(f"humaneval:{path}")],
                                str(tmp_path / "tok.model"), 400)
    torch.manual_seed(0)
    net = model.CodePlanModel(model.ModelConfig(vocab_size=tokenizer.vocab_size, d_model=32, d_kv=8, d_ff=64,
                                                num_heads=2, num_layers=1, num_decoder_layers=1, dropout=0.0), quiet=True)
    with sandbox.Pool(workers=2, timeout=4.0) as pool:
        finished = {p.id: candidates for p, candidates in codeplan.plan_sample(
            net, tokenizer, [(0, problems)], pool, n=0, max_code_tokens=8, max_source=256)}
    for p in problems:
        (candidate,) = finished[p.id]
        prompt = codeplan.code_prefix(p)
        assert prompt and prompt == p.starter_code
        assert candidate.code.startswith(prompt) and len(candidate.code) > len(prompt)   # prompt + completion
        assert candidate.status and not candidate.passed        # 8 random tokens do not solve HumanEval
    # the harness's own reading: the prompt plus the canonical completion passes
    verdict = sandbox.evaluate(problems[0], problems[0].solutions[0])
    assert verdict.passed and problems[0].solutions[0].startswith(problems[0].starter_code)


def test_mbpp_standard_test_split():
    path = ROOT.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl"
    if not path.exists():
        print(f"skipping: {path} not found")
        pytest.skip(f"{path} not found")
    problems = data.load_problems(f"mbpp:{path}", "test")
    assert [int(p.id) for p in problems] == list(range(11, 511))      # task_ids 11-510, as MBPP's README says
    assert all(len(p.hidden_tests) == 3 and p.public_tests[0] == p.hidden_tests[0] for p in problems)
