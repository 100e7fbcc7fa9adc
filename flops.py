"""The work a training step does, counted for the logs and summary.json: examples and tokens per
micro-batch, training FLOPs from the model's shape, and the peak FLOP/s that MFU divides by."""
from __future__ import annotations

import torch

import model as model_lib

# Peak dense bf16 FLOP/s of cards we can name, for MFU; other devices report no MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return next((v for k, v in PEAK_FLOPS.items() if k in torch.cuda.get_device_name(device)), None)


def example_flops(c: model_lib.ModelConfig, source: int, target: int) -> float:
    """Training FLOPs (forward + backward) of one example: `source` tokens through the encoder,
    `target` tokens through the decoder. Counted from the matrix products, 2 FLOPs per multiply-add;
    norms, softmax and embedding lookups are left out (small). With d = d_model, a = heads * d_kv,
    f = d_ff, L_e / L_d encoder / decoder layers, S / T source / target tokens, V the vocabulary,
    multiply-adds of one forward pass:
        encoder, per layer: S * (4*d*a + F) + 2*S*S*a      q, k, v, o and feed-forward; scores and mix
        decoder, per layer: T * (4*d*a + F) + 2*T*T*a      self-attention as above (full T x T, masked)
                          + 2*d*a*T + 2*d*a*S + 2*T*S*a    cross-attention: q and o on T, k and v on S; scores and mix
        head:               T * d * V
    with F = 2*d*f (relu) or 3*d*f (gated-gelu). forward = 2 * multiply-adds; backward = 2 * forward.
    Pads are not counted: this is the work the batch needs, not what padding adds."""
    d, a = c.d_model, c.num_heads * c.d_kv
    ff = (3 if c.feed_forward == "gated-gelu" else 2) * d * c.d_ff
    encoder = c.num_layers * (source * (4 * d * a + ff) + 2 * source * source * a)
    decoder = c.num_decoder_layers * (target * (4 * d * a + ff) + 2 * target * target * a
                                      + 2 * d * a * (target + source) + 2 * target * source * a)
    return 3 * 2 * (encoder + decoder + target * d * c.vocab_size)


def batch_work(pairs: dict, config: model_lib.ModelConfig) -> dict:
    """What one micro-batch trains on: examples of each task, tokens (source + target), FLOPs."""
    every = pairs["code"] + pairs["plan"]
    return {"code_examples": len(pairs["code"]), "plan_examples": len(pairs["plan"]),
            "tokens": sum(len(s) + len(t) for s, t in every),
            "flops": sum(example_flops(config, len(s), len(t)) for s, t in every)}
