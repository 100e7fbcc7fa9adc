"""Per-step profile of model.generate at full batch: python results/sample-speed/profile_step.py CHECKOUT

The tiny preset (vocabulary 4096) with random weights and a sharpened plan head (peaked distributions,
as a trained model's), 8 sources of 200 tokens x 16 samples = 128 rows, 32 sampled steps (T 0.6,
top-p 0.95, EOS ignored), the model.py of CHECKOUT; prints tokens/s, then torch.profiler's table."""
import sys
import time

import torch

sys.path.insert(0, sys.argv[1])
import model as M  # noqa: E402

torch.manual_seed(0)
net = M.CodePlanModel(M.ModelConfig.preset("tiny", 4096, dropout=0.0), quiet=True).eval()
with torch.no_grad():
    net.plan_head.weight.mul_(20)
ids = torch.randint(2, 4096, (8, 200))
mask = torch.ones_like(ids)
generator = torch.Generator().manual_seed(0)


def run(steps: int):
    return net.generate(ids, mask, head="plan", max_new_tokens=steps, temperature=0.6, top_p=0.95,
                        num_return_sequences=16, generator=generator, stop_at_eos=False)


run(4)
start = time.perf_counter()
run(32)
elapsed = time.perf_counter() - start
print(f"tokens/s {128 * 32 / elapsed:.0f}, ms/step {elapsed / 32 * 1000:.1f}")
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
    run(32)
print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
