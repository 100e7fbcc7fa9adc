"""Run a micro train.py + sample.py in the repository given as argv[1]; outputs under argv[2]."""
import contextlib, io, json, sys
repo, out, spec = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, repo)
import torch
torch.set_num_threads(1)
import model
model.PRESETS["tiny"] = dict(d_model=64, d_kv=16, d_ff=128, num_heads=2, num_layers=2, num_decoder_layers=2)
import train, sample
common = ["--data", spec, "--out", out, "--device", "cpu", "--vocab-size", "400", "--max-source-len", "128",
          "--max-target-len", "64", "--log-interval", "5", "--eval-interval", "10", "--eval-examples", "16", "--pass1-limit", "10"]
train.main(common + ["--name", "plain", "--steps", "30", "--batch-size", "8", "--lr", "3e-3", "--warmup", "3"])
train.main(common + ["--name", "accum", "--steps", "20", "--batch-size", "8", "--grad-accum", "2", "--lambda", "0.3", "--dropout", "0.1"])
train.main(common + ["--name", "resumed", "--steps", "20", "--batch-size", "8", "--stop-after", "7"])
train.main(["--out", out, "--name", "resumed", "--resume", "--device", "cpu", "--pass1-limit", "10"])
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    sample.main(["--checkpoint", f"{out}/plain/best.pt", "--n", "2", "--limit", "8", "--max-new-tokens", "32", "--workers", "2",
                 "--data", spec, "--split", "test", "--out", f"{out}/sample"])
open(f"{out}/sample-table.txt", "w").write(buf.getvalue())
