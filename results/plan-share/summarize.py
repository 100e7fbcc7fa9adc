"""Summarise results/plan-share/run.sh: valid pass@1 by plan share (--plan-in-code), learning rate and
decoding, per tier, style and difficulty, and each share's greedy-plan pass@1 against the default 0.9 at the same
learning rate, paired by problem, with a bootstrap 95% interval over problems (one seed).

    python results/plan-share/summarize.py OUT > results/plan-share/summary.md   # OUT: run.sh's, or results/plan-share
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import data  # noqa: E402
import reproduce  # noqa: E402

RUNS = {"codeplan-paper-lr0.00035-seed0": (0.0, 3.5e-4), "codeplan-lr0.00035-seed0": (0.9, 3.5e-4),
        "codeplan-paper-lr0.0007-seed0": (0.0, 7e-4), "codeplan-share0.5-lr0.0007-seed0": (0.5, 7e-4),
        "codeplan-lr0.0007-seed0": (0.9, 7e-4)}
DECODINGS = ("direct", "greedy-plan", "ref-plans")

out = Path(sys.argv[1])
problems = reproduce.scored_problems(data.load_problems("synthetic", "valid"), 300)   # as run.sh wrote valid-300.jsonl
groups = reproduce.groups_of({p.id: {"tier": p.tier, "style": p.style, "difficulty": p.difficulty} for p in problems})
top = {(run, d): {i: o[2] for i, o in reproduce.read_outcomes(out / run / d / "samples_results.jsonl").items()}
       for run in RUNS for d in DECODINGS if (out / run / d / "samples_results.jsonl").exists()}

print(f"Valid pass@1 (%) on the first 100 valid problems of each tier ({len(problems)}), CodePLAN lambda 0.5, "
      "400 steps x 16, seed 0, one candidate per problem.\n")
print("| plan share | lr | decoding | " + " | ".join(f"{g} ({len(ids)})" for g, ids in groups.items()) + " |")
print("|---|---|---|" + "---|" * len(groups))
for run, (share, lr) in RUNS.items():
    for d in DECODINGS:
        if (run, d) in top:
            cells = [f"{100 * np.mean([top[run, d][i] for i in ids]):.1f}" for ids in groups.values()]
            print(f"| {share:g} | {lr:g} | {d} | " + " | ".join(cells) + " |")

print("\nGreedy-plan pass@1 against plan share 0.9 at the same learning rate, points, paired by problem, "
      "bootstrap 95% interval over problems:\n")
print("| plan share | lr | " + " | ".join(groups) + " |")
print("|---|---|" + "---|" * len(groups))
for run, (share, lr) in RUNS.items():
    base = next(r for r, (s, l) in RUNS.items() if s == 0.9 and l == lr)
    if run == base or (run, "greedy-plan") not in top or (base, "greedy-plan") not in top:
        continue
    cells = []
    for ids in groups.values():
        order = sorted(ids)
        diff = np.array([[top[run, "greedy-plan"][i] - top[base, "greedy-plan"][i] for i in order]], dtype=float)
        cells.append(reproduce.difference_text(reproduce.paired_bootstrap(diff, 2000)))
    print(f"| {share:g} vs 0.9 | {lr:g} | " + " | ".join(cells) + " |")
