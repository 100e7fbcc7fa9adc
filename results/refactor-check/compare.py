"""Compare two output folders of run_one.py: metrics, summaries, checkpoint weights, sample.py's table
(wall-clock fields and the sampling time line left out)."""
import json, sys, torch
from pathlib import Path
a, b = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
VOLATILE = {"tokens_per_s", "eta_s", "train_seconds", "commit", "dirty", "mfu"}
ok = True
for run in ("plain", "accum", "resumed"):
    for name in ("metrics.jsonl",):
        ra = [{k: v for k, v in json.loads(l).items() if k not in VOLATILE} for l in (a / run / name).read_text().splitlines()]
        rb = [{k: v for k, v in json.loads(l).items() if k not in VOLATILE} for l in (b / run / name).read_text().splitlines()]
        same = ra == rb
        ok &= same
        print(f"{run}/{name}: {len(ra)} records, identical: {same}")
    sa = {k: v for k, v in json.loads((a / run / "summary.json").read_text()).items() if k not in VOLATILE}
    sb = {k: v for k, v in json.loads((b / run / "summary.json").read_text()).items() if k not in VOLATILE}
    print(f"{run}/summary.json identical: {sa == sb}")
    ok &= sa == sb
    for ck in ("last.pt", "best.pt"):
        ma = torch.load(a / run / ck, weights_only=True)["model"]
        mb = torch.load(b / run / ck, weights_only=True)["model"]
        same = ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)
        ok &= same
        print(f"{run}/{ck} weights bit-identical: {same}")
ta, tb = (a / "sample-table.txt").read_text().replace(str(a), "OUT"), (b / "sample-table.txt").read_text().replace(str(b), "OUT")
ta = "\n".join(l for l in ta.splitlines() if "commit" not in l and not l.startswith("sampling (")); tb = "\n".join(l for l in tb.splitlines() if "commit" not in l and not l.startswith("sampling ("))
print(ta)
print("sample.py table identical:", ta == tb)
ok &= ta == tb
print("ALL IDENTICAL" if ok else "DIFFERENCES FOUND")
