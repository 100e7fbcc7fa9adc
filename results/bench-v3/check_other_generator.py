"""The determinacy check of this checkout's synthetic.py run on another generator's default benchmark
(train cut to its first 2,000 problems; valid and test whole), with shares per split, tier, style
and step count. Used for the "before" figures in summary.md:

    python results/bench-v3/check_other_generator.py OTHER/synthetic.py > results/bench-v3/check-before.txt
"""
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import synthetic  # noqa: E402

spec = importlib.util.spec_from_file_location("other_synthetic", sys.argv[1])
other = importlib.util.module_from_spec(spec)
sys.modules["other_synthetic"] = other   # dataclasses look their module up here
spec.loader.exec_module(other)
splits = other.generate(0, other.DEFAULT_SIZES)
splits["train"] = splits["train"][:2000]
print("\n".join(synthetic.check(splits, "full")))   # a solver of all 47 primitives, as that generator drew
for split in ("valid", "test"):
    groups: dict[tuple, list[bool]] = {}
    for record in splits[split]:
        ok, n_steps = synthetic.determined(record, synthetic.MIXES["full"])
        groups.setdefault((record["tier"], record["style"], n_steps), []).append(ok)
    for key in sorted(groups):
        print(split, key, f"{100 * sum(groups[key]) / len(groups[key]):.0f}% of {len(groups[key])}")
