"""Interleaved timing of `python sample.py` in two checkouts (before / after) on one checkpoint.

    python results/sample-speed/interleave.py --before /tmp/speed-before --after . \
        --checkpoint runs/NAME/best.pt --pairs 3 --out /tmp/interleave [-- extra sample.py flags]

Runs before, after, before, after, ... (the machine is shared, so conditions drift; alternating
gives both the same drift), each into its own output folder, and appends one JSON line per run to
results/sample-speed/timings.jsonl: the command's wall time, the sampling wall and generation time
that sample.py journals, the generated tokens (plan + program tokens of every candidate), and the
pass rates of its report. At the end it prints the medians and whether the two checkouts wrote
the same plans and programs.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(tree: Path, checkpoint: Path, out: Path, extra: list[str]) -> dict:
    command = [sys.executable, "sample.py", "--checkpoint", str(checkpoint), "--out", str(out), *extra]
    start = time.time()
    subprocess.run(command, cwd=tree, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - start
    invocation = [json.loads(line)["invocation"] for line in (out / "journal.jsonl").read_text().splitlines()
                  if '"invocation"' in line][-1]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    metrics = json.loads((out / "report.json").read_text())["metrics"]["all"]
    return {"command": " ".join(command[1:]), "cwd": str(tree), "command_wall_s": round(wall, 2),
            "sampling_wall_s": invocation["wall_s"], "generate_s": invocation["generate_s"],
            "problems": invocation["problems"], "generated_tokens": sum(s["tokens"] for s in samples),
            "pass": {k: v for k, v in metrics.items() if "@" in k}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--out", type=Path, required=True, help="folder for the runs' sample folders")
    p.add_argument("--label", default="", help="a name for this series in timings.jsonl")
    p.add_argument("extra", nargs="*", help="sample.py flags (after --)")
    args = p.parse_args()
    rows = {"before": [], "after": []}
    for pair in range(args.pairs):
        for side in ("before", "after"):
            out = args.out / f"{side}-{pair}"
            if out.exists():
                sys.exit(f"interleave.py: {out} exists; sample.py would resume it instead of sampling anew")
            row = run(getattr(args, side).resolve(), args.checkpoint.resolve(), out, args.extra)
            row.update(side=side, pair=pair, label=args.label, date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
            rows[side].append(row)
            with open(HERE / "timings.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    same = []
    for pair in range(args.pairs):
        before, after = ([json.loads(l) for l in (args.out / f"{s}-{pair}" / "samples.jsonl").read_text().splitlines()]
                         for s in ("before", "after"))
        key = lambda s: (s["task_id"], s["plan_id"])  # noqa: E731
        b, a = ({key(s): (s["plan"], s["code"]) for s in rows_} for rows_ in (before, after))
        same.append(sum(b[k] == a.get(k) for k in b))
    total = len(b)
    print(f"\n{args.label}: medians of {args.pairs} interleaved pairs")
    print("| measure | before | after | after / before |\n|---|---:|---:|---:|")
    for name, f in (("problems/s (command)", lambda r: r["problems"] / r["command_wall_s"]),
                    ("problems/s (sampling)", lambda r: r["problems"] / r["sampling_wall_s"]),
                    ("generated tokens/s", lambda r: r["generated_tokens"] / r["generate_s"])):
        b, a = (statistics.median(f(r) for r in rows[s]) for s in ("before", "after"))
        print(f"| {name} | {b:.3f} | {a:.3f} | {a / b:.2f}x |")
    print(f"candidates with the same plan and program before and after, per pair: {same} of {total}")


if __name__ == "__main__":
    main()
