"""bench.py: every mode runs end to end on CPU with tiny shapes and prints a complete table.

These are smoke tests of the benchmark code, not measurements: no speed is asserted."""
import gzip
import re
import shutil
from pathlib import Path

import pytest

import bench
import model
from conftest import MICRO

pytestmark = pytest.mark.usefixtures("one_thread")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| ---")]


def test_model_mode_prints_every_row_and_parity_with_hf(monkeypatch, capsys):
    pytest.importorskip("transformers")
    monkeypatch.setitem(model.PRESETS, "tiny", MICRO)
    bench.main(["model", "--presets", "tiny", "--device", "cpu", "--vocab", "64", "--batch", "2",
                "--source-len", "8", "--target-len", "6", "--steps", "1", "--sample-batches", "2", "3",
                "--new-tokens", "4", "--sample-source-len", "6", "--decoder-steps", "eager", "static",
                "--variants", "separate-projections,matmul-attention,adamw-fused-toggled"])
    rows = table_rows(capsys.readouterr().out)[1:]   # the header first
    measures = [row[1] for row in rows]
    assert sum(m.startswith("training tokens/s") for m in measures) == 4   # the default and 3 variants
    assert sum(m.startswith("sampling tokens/s") for m in measures) == 4   # 2 decoder steps x 2 batches
    assert any("decoder_step static" in m for m in measures)
    for row in rows:
        if row[1].startswith(("training", "sampling")):
            assert float(row[2].replace(",", "")) > 0 and row[4].endswith("x")
    assert ["tiny", "fp32 greedy rows identical to HF", "4", "of 4", ""] in rows


def test_model_mode_refuses_an_unknown_variant(capsys):
    with pytest.raises(SystemExit) as exit:
        bench.main(["model", "--presets", "tiny", "--device", "cpu", "--variants", "faster"])
    assert exit.value.code == 2 and "faster" in capsys.readouterr().err


def test_loop_mode_compares_train_py_with_the_model_alone(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(model.PRESETS, "tiny", MICRO)
    out = tmp_path / "bench-run"
    bench.main(["loop", "--data", spec, "--device", "cpu", "--batch-size", "4", "--steps", "3", "--out", str(out)])
    printed = capsys.readouterr().out
    rows = {row[0]: row for row in table_rows(printed)[1:]}
    assert len(rows) == 3 and rows["model alone (batches already on the device)"][2] == "1.00x"
    for name, rate, ratio in rows.values():
        assert float(rate.replace(",", "")) > 0 and ratio.endswith("x")
    assert re.search(r"data share of a step: -?\d+\.\d% with the pipeline; \d+\.\d% when built in the main thread", printed)
    assert re.search(r"token cache: \d+ texts tokenised in", printed)
    assert list((out / "loop").glob("tokens-*.npz"))   # train.py's run left its token cache next to its tokenizer


@pytest.mark.skipif(not (SHARED / "humaneval" / "HumanEval.jsonl.gz").exists(), reason="../shared/data is absent")
def test_sandbox_mode_on_a_slice_of_the_real_files(tmp_path, capsys):
    slice_dir = tmp_path / "data"
    (slice_dir / "humaneval").mkdir(parents=True)
    with gzip.open(SHARED / "humaneval" / "HumanEval.jsonl.gz", "rt") as f:
        first = [next(f) for _ in range(2)]
    with gzip.open(slice_dir / "humaneval" / "HumanEval.jsonl.gz", "wt") as f:
        f.writelines(first)
    apps = sorted((SHARED / "apps" / "original" / "train").iterdir())[0]
    shutil.copytree(apps, slice_dir / "apps" / "original" / "train" / apps.name)
    bench.main(["sandbox", "--shared-data", str(slice_dir), "--copies", "1", "--workers", "2"])
    rows = table_rows(capsys.readouterr().out)[1:]
    runners = {(row[0], row[1]) for row in rows}
    assert ("HumanEval x1", "sandbox.py") in runners and ("HumanEval x1", "python per program") in runners
    assert any(workload == "APPS stdio x1" for workload, _ in runners)
    for row in rows:
        if row[0] == "HumanEval x1":
            assert row[2] == "2" and row[3] == "2"   # both canonical solutions pass


def test_model_mode_with_activation_checkpointing_in_both_models(monkeypatch, capsys):
    pytest.importorskip("transformers")
    monkeypatch.setitem(model.PRESETS, "tiny", MICRO)
    bench.main(["model", "--presets", "tiny", "--device", "cpu", "--vocab", "64", "--batch", "2",
                "--source-len", "8", "--target-len", "6", "--steps", "1", "--sample-batches", "2",
                "--new-tokens", "4", "--sample-source-len", "6", "--grad-checkpoint"])
    rows = table_rows(capsys.readouterr().out)[1:]
    training = [row for row in rows if row[1].startswith("training tokens/s")]
    assert len(training) == 1 and float(training[0][2].replace(",", "")) > 0
    assert ["tiny", "fp32 greedy rows identical to HF", "4", "of 4", ""] in rows


def test_sample_mode_times_decoding_against_the_forward_pass_and_transformers(spec, tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    import train
    monkeypatch.setitem(model.PRESETS, "tiny", MICRO)
    train.main(["--data", spec, "--out", str(tmp_path), "--name", "micro", "--device", "cpu", "--steps", "4",
                "--batch-size", "8", "--vocab-size", "400", "--max-source-len", "128", "--max-target-len", "16",
                "--warmup", "1", "--eval-examples", "8", "--pass1-limit", "-1"])
    capsys.readouterr()
    bench.main(["sample", "--checkpoint", str(tmp_path / "micro" / "last.pt"), "--limit", "3", "--n", "2",
                "--batch-size", "4"])
    printed = capsys.readouterr().out
    rows = {row[0]: row for row in table_rows(printed)[1:]}
    assert list(rows) == ["sample.py decoding (model.generate)", "teacher-forced forward, same sequences",
                          "transformers T5 generate, same weights and inputs"]
    # both of ours count the same tokens; the forward pass is the unit of the last column
    assert rows["sample.py decoding (model.generate)"][1] == rows["teacher-forced forward, same sequences"][1]
    assert rows["teacher-forced forward, same sequences"][5] == "1.00"
    for name, tokens, seconds, rate, problems, ratio in rows.values():
        assert int(tokens) > 0 and float(rate.replace(",", "")) > 0 and float(ratio) > 0
    # 3 problems x 2 plans, one greedy program each: with the same weights, transformers writes the same programs
    assert "greedy programs identical to transformers': 6 of 6" in printed
