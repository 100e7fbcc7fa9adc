# The plan share (--plan-in-code) on valid: CodePLAN checkpoints trained with a plan in 0, 0.5 or 0.9 of
# their code inputs (lambda 0.5, 400 x 16, seed 0, the tokenizer of reproduce.py --cpu), each scored on the
# first 100 valid problems of each tier with direct code, the greedy plan and the reference plans.
# Usage: bash results/plan-share/run.sh CPU_RUN OUT   (CPU_RUN: a reproduce.py --cpu folder with its
# runs/ and inputs/; OUT: where the new run and the samples go). Run from the repository root.
set -euo pipefail
cpu=$1; out=$2
export OMP_NUM_THREADS=1
mkdir -p "$out"
python - "$out" <<'PY'
import sys
from pathlib import Path
import data, teacher, reproduce
out = Path(sys.argv[1])
if not (out / "valid-300.jsonl").exists():
    reproduce.write_problems(out / "valid-300.jsonl", reproduce.scored_problems(data.load_problems("synthetic", "valid"), 300), "valid")
    teacher.write_reference_plans(data.load_problems(f"synthetic:{out / 'valid-300.jsonl'}", "valid"), str(out / "valid-300-reference-plans.jsonl"))
PY
python train.py --lambda 0.5 --plan-in-code 0.5 --seed 0 --name codeplan-share0.5-lr0.0007-seed0 --out "$out/runs" \
    --data synthetic --steps 400 --batch-size 16 --tokenizer "$cpu/inputs/tokenizer-4096.model" --pass1-limit -1 --lr 0.0007 \
    $( [ -f "$out/runs/codeplan-share0.5-lr0.0007-seed0/last.pt" ] && echo --resume )
for ckpt in "$cpu/runs/codeplan-paper-lr0.0007-seed0" "$cpu/runs/codeplan-paper-lr0.00035-seed0" \
            "$out/runs/codeplan-share0.5-lr0.0007-seed0" \
            "$cpu/runs/codeplan-lr0.0007-seed0" "$cpu/runs/codeplan-lr0.00035-seed0"; do
    name=$(basename "$ckpt")
    for decoding in direct greedy-plan ref-plans; do
        case $decoding in
            direct) flags="--n 0";;
            greedy-plan) flags="--n 1 --greedy-plan";;
            ref-plans) flags="--plans-from $out/valid-300-reference-plans.jsonl";;
        esac
        [ -f "$out/$name/$decoding/report.json" ] && continue
        python sample.py --checkpoint "$ckpt/last.pt" --out "$out/$name/$decoding" --seed 0 \
            --data "synthetic:$out/valid-300.jsonl" --split valid --per-tier 0 --workers 1 $flags
    done
done
