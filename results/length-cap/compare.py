"""sample.py with the decoding caps taken from the data against the fixed 256-token limit, on one
checkpoint and the same problems: pass rates per group, how many candidates are the same, and the
sampling time. Commands (README.md in this folder):

    python sample.py --checkpoint CKPT --split valid --per-tier 100 --n 4 --out CAPPED
    python sample.py --checkpoint CKPT --split valid --per-tier 100 --n 4 --max-new-tokens 256 --out FIXED
    python results/length-cap/compare.py CAPPED FIXED
"""
import json
import sys
from pathlib import Path


def load(folder: Path) -> tuple[dict, dict, dict]:
    samples = {}
    for line in (folder / "samples.jsonl").read_text().splitlines():
        s = json.loads(line)
        samples[(s["task_id"], s["plan_id"], s["rank"] if s["plan_id"] is None else 0)] = (s["plan"], s["code"])
    invocation = [json.loads(line)["invocation"] for line in (folder / "journal.jsonl").read_text().splitlines()
                  if '"invocation"' in line][-1]
    return json.loads((folder / "report.json").read_text())["metrics"], samples, invocation


capped, fixed = (Path(a) for a in sys.argv[1:3])
(m_c, s_c, i_c), (m_f, s_f, i_f) = load(capped), load(fixed)
keys = [k for k in m_c["all"] if "@" in k]
print(f"capped: {capped}\nfixed 256: {fixed}\n")
print("| group | problems | " + " | ".join(f"{k} capped / 256" for k in keys) + " |")
print("|---|---|" + "---|" * len(keys))
for group in (g for g in m_c if "problems" in m_c[g]):
    print(f"| {group} | {m_c[group]['problems']} | " + " | ".join(f"{100 * m_c[group][k]:.1f} / {100 * m_f[group][k]:.1f}" for k in keys) + " |")
same = sum(s_c.get(k) == v for k, v in s_f.items())
print(f"\ncandidates with the same plan and program: {same} of {len(s_f)}")
print(f"sampling wall: capped {i_c['wall_s']:.0f} s, 256 {i_f['wall_s']:.0f} s; generation: capped {i_c['generate_s']:.0f} s, "
      f"256 {i_f['generate_s']:.0f} s ({i_f['generate_s'] / i_c['generate_s']:.2f}x)")
