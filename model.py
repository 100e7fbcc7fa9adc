"""The CodePLAN model: a T5 (v1.0 / CodeT5) encoder-decoder with one shared trunk and two heads.

The code head maps decoder states to code tokens, the plan head to plan tokens; everything else
(embedding, encoder, decoder) is shared. The trunk follows Hugging Face `T5ForConditionalGeneration`
exactly (tests/test_model.py proves it to 1e-4 on random weights):
- one embedding for encoder inputs, decoder inputs and (tied) code head;
- RMSNorm with the variance in fp32, pre-norm residual blocks, no biases anywhere;
- attention without 1/sqrt(d_kv): the scale lives in the initialisation;
- relative position bias (buckets, bidirectional in the encoder, causal in the decoder), one table
  per stack computed once per forward and added in every layer (HF keeps the table in block 0 and
  passes the result upward: the same computation); none in cross-attention;
- a tied code head rescales the decoder output by d_model**-0.5 (T5 v1.0); an untied one does not
  (T5 v1.1). The plan head is a separate projection initialised as a copy of the code head and fed
  the same (rescaled) states, so at initialisation both heads give identical logits.

Starting from a pretrained T5 or CodeT5 checkpoint on disk (a Hugging Face folder with config.json
and model.safetensors or pytorch_model.bin; nothing is downloaded):

    model = model.from_pretrained_t5("path/to/codet5-small")          # builds, loads, copies plan head
    # or by hand, with any state dict of T5ForConditionalGeneration:
    config = ModelConfig.from_hf_config(json.load(open("path/config.json")))
    net = CodePlanModel(config)
    load_hf_t5_state_dict(net, read_state_dict("path/pytorch_model.bin"))

Generation (`CodePlanModel.generate`) encodes once, precomputes cross-attention keys/values, writes
self-attention keys/values into preallocated buffers, drops finished rows from the batch (on CPU),
and returns the tokens with the summed log-probability of each sequence under the model (log-softmax
of the raw logits, temperature 1, so that scores rank alike whatever the sampling temperature).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint
from torch.nn.attention import SDPBackend, sdpa_kernel

PRESETS = {  # d_model, d_kv, d_ff, heads, encoder layers, decoder layers
    "tiny": dict(d_model=192, d_kv=48, d_ff=768, num_heads=4, num_layers=4, num_decoder_layers=4),
    "small": dict(d_model=512, d_kv=64, d_ff=2048, num_heads=8, num_layers=6, num_decoder_layers=6),
    "base": dict(d_model=768, d_kv=64, d_ff=3072, num_heads=12, num_layers=12, num_decoder_layers=12),
    "large": dict(d_model=1024, d_kv=64, d_ff=4096, num_heads=16, num_layers=24, num_decoder_layers=24),
}
HEADS = ("code", "plan")
DECODER_STEPS = ("eager", "static", "cuda-graph")
# how generate draws a sample (choose_tokens); sample.py records it, as samples drawn another way differ
SAMPLER = "inverse distribution function, one uniform draw per row and step"


class CheckpointError(ValueError):
    """A state dict or checkpoint folder that does not fit the model; the message names the key or file."""


@dataclass
class ModelConfig:
    vocab_size: int
    d_model: int = 256
    d_kv: int = 64
    d_ff: int = 1024
    num_heads: int = 4
    num_layers: int = 4
    num_decoder_layers: int = 4
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout: float = 0.1
    feed_forward: str = "relu"          # "relu" (T5 v1.0, CodeT5) or "gated-gelu" (T5 v1.1)
    tie_word_embeddings: bool = True    # tied code head with the d_model**-0.5 rescale
    pad_id: int = 0                     # also the decoder start token, as in T5
    eos_id: int = 1
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.feed_forward not in ("relu", "gated-gelu"):
            raise ValueError(f"ModelConfig.feed_forward: expected 'relu' or 'gated-gelu', got {self.feed_forward!r}")

    @classmethod
    def preset(cls, name: str, vocab_size: int, **overrides) -> "ModelConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(vocab_size=vocab_size, **{**PRESETS[name], **overrides})

    @classmethod
    def from_hf_config(cls, hf: dict) -> "ModelConfig":
        """The config of a Hugging Face T5 config.json (a dict)."""
        ff = hf.get("feed_forward_proj", "relu")
        if ff not in ("relu", "gated-gelu"):
            raise CheckpointError(f"config.json: feed_forward_proj {ff!r} is not supported (relu, gated-gelu)")
        # transformers 5 always ties the head and stores the v1.0/v1.1 difference as scale_decoder_outputs
        tied = hf.get("scale_decoder_outputs", hf.get("tie_word_embeddings", True))
        return cls(vocab_size=hf["vocab_size"], d_model=hf["d_model"], d_kv=hf["d_kv"], d_ff=hf["d_ff"],
                   num_heads=hf["num_heads"], num_layers=hf["num_layers"],
                   num_decoder_layers=hf.get("num_decoder_layers") or hf["num_layers"],
                   relative_attention_num_buckets=hf.get("relative_attention_num_buckets", 32),
                   relative_attention_max_distance=hf.get("relative_attention_max_distance", 128),
                   dropout=hf.get("dropout_rate", 0.1), feed_forward=ff, tie_word_embeddings=bool(tied),
                   pad_id=hf.get("pad_token_id", 0), eos_id=hf.get("eos_token_id", 1),
                   layer_norm_eps=hf.get("layer_norm_epsilon", 1e-6))


def relative_position_bucket(relative_position: torch.Tensor, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> torch.Tensor:
    """T5's bucket of each (key position - query position): exact for small distances, log-spaced
    up to max_distance, then clamped. Bidirectional spends half the buckets on positive offsets;
    causal maps every positive offset (never attended) to bucket 0."""
    bucket = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        bucket += (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    log_ratio = torch.log(distance.float().clamp(min=max_exact) / max_exact) / math.log(max_distance / max_exact)
    far = (max_exact + (log_ratio * (num_buckets - max_exact)).long()).clamp(max=num_buckets - 1)
    return bucket + torch.where(distance < max_exact, distance, far)


def padding_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[B, S] 1/0 mask -> additive float mask [B, 1, 1, S] (0 for tokens, a huge negative for padding)."""
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def compute_dtype(reference: torch.Tensor) -> torch.dtype:
    """The dtype attention runs in: the autocast dtype when autocast is on, else the weights' dtype."""
    device = reference.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else reference.dtype


class RMSNorm(nn.Module):
    """T5LayerNorm: scale only, no mean subtraction, variance accumulated in fp32."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.float().pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return self.weight * x


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """[B, T, H*d] -> [B, H, T, d]"""
    return x.view(x.shape[0], x.shape[1], num_heads, -1).transpose(1, 2)


# On CUDA, PyTorch tries cuDNN's fused attention first on Hopper GPUs. With this model's additive
# bias (the learned position bias plus padding) in bf16 it fails on an H100 ("mha_graph.execute(...)
# .is_good()" in forward or backward; pytorch PR 191612 describes a related misread bias). The
# memory-efficient kernel takes any additive bias and its gradient; flash attention takes none.
CUDA_ATTENTION_BACKENDS = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, dropout: float) -> torch.Tensor:
    """softmax(q k^T + bias) v, unscaled as in T5; on CUDA never through cuDNN (above)."""
    with sdpa_kernel(CUDA_ATTENTION_BACKENDS) if q.is_cuda else contextlib.nullcontext():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0, dropout_p=dropout)


class SelfAttention(nn.Module):
    """q, k, v in one projection (one matmul instead of three); optional key/value cache buffers."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads, self.inner = config.num_heads, config.num_heads * config.d_kv
        self.qkv = nn.Linear(config.d_model, 3 * self.inner, bias=False)
        self.o = nn.Linear(self.inner, config.d_model, bias=False)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                position: int | torch.Tensor = 0) -> torch.Tensor:
        q, k, v = (split_heads(part, self.num_heads) for part in self.qkv(x).split(self.inner, dim=-1))
        if isinstance(position, torch.Tensor):  # static shapes for CUDA graphs: the index lives on the device,
            cache[0].index_copy_(2, position, k)  # attention spans the whole buffer and the mask hides the
            cache[1].index_copy_(2, position, v)  # positions not written yet
            k, v = cache
        elif cache is not None:  # write this step's keys/values, attend over everything written so far
            end = position + x.shape[1]
            cache[0][:, :, position:end] = k
            cache[1][:, :, position:end] = v
            k, v = cache[0][:, :, :end], cache[1][:, :, :end]
        y = attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.o(y.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.inner))


class CrossAttention(nn.Module):
    """Decoder -> encoder attention, no position bias; keys/values computed once per source."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads, self.inner = config.num_heads, config.num_heads * config.d_kv
        self.q = nn.Linear(config.d_model, self.inner, bias=False)
        self.kv = nn.Linear(config.d_model, 2 * self.inner, bias=False)
        self.o = nn.Linear(self.inner, config.d_model, bias=False)
        self.dropout = config.dropout

    def keys_values(self, encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(encoded).split(self.inner, dim=-1)
        return split_heads(k, self.num_heads), split_heads(v, self.num_heads)

    def forward(self, x: torch.Tensor, keys_values: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor,
                slots: torch.Tensor | None = None, per_source: int = 1) -> torch.Tensor:
        """x [B, T, D] attends to the keys/values [B, H, S, d] of its own source. In decoding, x holds one
        token of each row [rows, 1, D] and several rows may decode one source: row r is then query
        slots[r] of per_source query places per source, so that the rows of a source are attended
        together and its keys/values are read once per step, not once per row."""
        dropout = self.dropout if self.training else 0.0
        q = split_heads(self.q(x), self.num_heads)
        if slots is None:
            y = attention(q, *keys_values, mask, dropout)
        else:
            sources = keys_values[0].shape[0]
            grid = q.new_zeros(sources * per_source, *q.shape[1:])
            grid[slots] = q
            grid = grid.view(sources, per_source, self.num_heads, -1).transpose(1, 2)   # [sources, H, per_source, d]
            y = attention(grid, *keys_values, mask, dropout).transpose(1, 2)
            y = y.reshape(sources * per_source, self.num_heads, 1, -1)[slots]
        return self.o(y.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.inner))


class FeedForward(nn.Module):
    """relu: wo(relu(wi x)); gated-gelu: wo(gelu_tanh(wi_0 x) * wi_1 x), wi_0 and wi_1 stacked in wi."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gated = config.feed_forward == "gated-gelu"
        self.wi = nn.Linear(config.d_model, config.d_ff * (2 if self.gated else 1), bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.wi(x)
        if self.gated:
            gate, linear = h.chunk(2, dim=-1)
            h = F.gelu(gate, approximate="tanh") * linear
        else:
            h = F.relu(h)
        return self.wo(self.dropout(h))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, decoder: bool):
        super().__init__()
        self.self_attn_norm = RMSNorm(config.d_model, config.layer_norm_eps)
        self.self_attn = SelfAttention(config)
        self.cross_attn_norm = RMSNorm(config.d_model, config.layer_norm_eps) if decoder else None
        self.cross_attn = CrossAttention(config) if decoder else None
        self.ff_norm = RMSNorm(config.d_model, config.layer_norm_eps)
        self.ff = FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, self_mask: torch.Tensor, cross_kv=None, cross_mask=None,
                cache=None, position: int | torch.Tensor = 0, slots=None, per_source: int = 1) -> torch.Tensor:
        x = x + self.dropout(self.self_attn(self.self_attn_norm(x), self_mask, cache, position))
        if self.cross_attn is not None:
            x = x + self.dropout(self.cross_attn(self.cross_attn_norm(x), cross_kv, cross_mask, slots, per_source))
        return x + self.dropout(self.ff(self.ff_norm(x)))


class Stack(nn.Module):
    """The encoder (bidirectional) or decoder (causal, with cross-attention) stack."""

    def __init__(self, config: ModelConfig, decoder: bool):
        super().__init__()
        self.decoder, self.config = decoder, config
        self.relative_attention_bias = nn.Embedding(config.relative_attention_num_buckets, config.num_heads)
        self.layers = nn.ModuleList(Block(config, decoder) for _ in range(config.num_decoder_layers if decoder
                                                                         else config.num_layers))
        self.final_norm = RMSNorm(config.d_model, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.checkpoint = False   # activation checkpointing, see CodePlanModel.gradient_checkpointing

    def position_bias(self, query_positions: torch.Tensor, key_positions: torch.Tensor) -> torch.Tensor:
        """[1, H, Q, K] bias of every (query, key) position pair."""
        buckets = relative_position_bucket(key_positions[None, :] - query_positions[:, None], not self.decoder,
                                           self.config.relative_attention_num_buckets,
                                           self.config.relative_attention_max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]

    def self_mask(self, length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """[1, H, T, T] position bias, plus the causal mask in the decoder: bias and mask in one tensor."""
        positions = torch.arange(length, device=device)
        mask = self.position_bias(positions, positions).to(dtype)
        if self.decoder:
            mask = mask + torch.full_like(mask[0, 0], torch.finfo(dtype).min).triu(1)
        return mask

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None, encoded: torch.Tensor | None = None,
                cross_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x: embedded tokens [B, T, D]. Encoder: attention_mask [B, T]. Decoder: encoded [B, S, D] and
        its additive cross_mask [B, 1, 1, S]."""
        dtype = compute_dtype(x)
        mask = self.self_mask(x.shape[1], dtype, x.device)
        if not self.decoder:
            mask = mask + padding_mask(attention_mask, dtype)
        x = self.dropout(x)
        for layer in self.layers:
            if self.checkpoint and torch.is_grad_enabled():
                # non-reentrant, with the RNG state replayed: the same dropout masks, the same gradients
                x = torch.utils.checkpoint.checkpoint(self.run_layer, layer, x, mask, encoded, cross_mask,
                                                      use_reentrant=False)
            else:
                x = self.run_layer(layer, x, mask, encoded, cross_mask)
        return self.dropout(self.final_norm(x))

    def run_layer(self, layer: Block, x, mask, encoded, cross_mask) -> torch.Tensor:
        cross_kv = layer.cross_attn.keys_values(encoded) if self.decoder else None
        return layer(x, mask, cross_kv, cross_mask)


class CodePlanModel(nn.Module):
    def __init__(self, config: ModelConfig, quiet: bool = False):
        """Builds and initialises the model (HF T5 initialisation); prints the parameter count to
        stderr unless quiet."""
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = Stack(config, decoder=False)
        self.decoder = Stack(config, decoder=True)
        self.lm_head = None if config.tie_word_embeddings else nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.plan_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.output_scale = config.d_model ** -0.5 if config.tie_word_embeddings else 1.0
        self.apply(self._init_weights)
        self.copy_code_head_to_plan_head()
        if not quiet:
            plan = self.plan_head.weight.numel()
            print(f"model: {self.num_parameters() / 1e6:.2f}M parameters (trunk and code head "
                  f"{(self.num_parameters() - plan) / 1e6:.2f}M, plan head {plan / 1e6:.2f}M)", file=sys.stderr)

    def _init_weights(self, module: nn.Module) -> None:
        c = self.config
        std = {}
        if module is self:
            std = {"embedding": 1.0, "lm_head": 1.0}
        elif isinstance(module, Stack):
            std = {"relative_attention_bias": c.d_model ** -0.5}
        elif isinstance(module, (SelfAttention, CrossAttention)):
            std = {"o": (c.num_heads * c.d_kv) ** -0.5}
            if isinstance(module, SelfAttention):  # q rows first, then k and v rows
                inner = module.inner
                with torch.no_grad():
                    nn.init.normal_(module.qkv.weight[:inner], std=(c.d_model * c.d_kv) ** -0.5)
                    nn.init.normal_(module.qkv.weight[inner:], std=c.d_model ** -0.5)
            else:
                std.update(q=(c.d_model * c.d_kv) ** -0.5, kv=c.d_model ** -0.5)
        elif isinstance(module, FeedForward):
            std = {"wi": c.d_model ** -0.5, "wo": c.d_ff ** -0.5}
        for name, value in std.items():
            sub = getattr(module, name)
            if sub is not None:
                nn.init.normal_(sub.weight, std=value)

    @torch.no_grad()
    def copy_code_head_to_plan_head(self) -> None:
        """Make the plan head start where the code head is (after init or after loading weights)."""
        self.plan_head.weight.copy_(self.embedding.weight if self.lm_head is None else self.lm_head.weight)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.no_grad()
    def resize_vocab(self, vocab_size: int) -> None:
        """Grow (or cut) the embedding and both heads to vocab_size rows; the ids below both sizes keep
        their rows. New rows start at the mean of the old ones, so a new token (a task marker) starts
        with average logits instead of a random outlier."""
        def resized(weight: torch.Tensor) -> nn.Parameter:
            rows = weight.new_empty(vocab_size, weight.shape[1])
            keep = min(vocab_size, weight.shape[0])
            rows[:keep] = weight[:keep]
            rows[keep:] = weight.mean(dim=0)
            return nn.Parameter(rows)
        self.embedding.weight = resized(self.embedding.weight)
        self.embedding.num_embeddings = vocab_size
        for head in (self.lm_head, self.plan_head):
            if head is not None:
                head.weight = resized(head.weight)
                head.out_features = vocab_size
        self.config.vocab_size = vocab_size

    def gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them: training
        memory of the blocks falls from all layers to about one, for roughly one more forward pass."""
        self.encoder.checkpoint = self.decoder.checkpoint = enabled

    def head_logits(self, hidden: torch.Tensor, head: str) -> torch.Tensor:
        hidden = hidden * self.output_scale
        if head == "plan":
            return self.plan_head(hidden)
        if head != "code":
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        return F.linear(hidden, self.embedding.weight) if self.lm_head is None else self.lm_head(hidden)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embedding(input_ids), attention_mask=attention_mask)

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing decoder inputs: start token (pad) then labels[:-1], with -100 read as pad."""
        shifted = torch.full_like(labels, self.config.pad_id)
        shifted[:, 1:] = labels[:, :-1]
        return shifted.masked_fill(shifted == -100, self.config.pad_id)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None, head: str = "code"):
        """-> (logits [B, T, V], token-mean cross-entropy over labels != -100, or None without labels)."""
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("forward needs labels or decoder_input_ids")
            decoder_input_ids = self.shift_right(labels)
        encoded = self.encode(input_ids, attention_mask)
        cross_mask = padding_mask(attention_mask, compute_dtype(encoded))
        hidden = self.decoder(self.embedding(decoder_input_ids), encoded=encoded, cross_mask=cross_mask)
        logits = self.head_logits(hidden, head)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, head: str = "code",
                 max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
                 num_return_sequences: int = 1, generator: torch.Generator | None = None,
                 stop_at_eos: bool = True, decoder_step: str = "auto", prefix: torch.Tensor | None = None) -> tuple[list[list[int]], torch.Tensor]:
        """Batched decoding with a key/value cache. temperature 0 is greedy.

        Returns the tokens of each sequence (without the start token, EOS and pads) and the summed
        log-probabilities [B * num_return_sequences] of the generated tokens, EOS included, under
        log_softmax(raw logits): temperature, top-k and top-p shape the sampling, not the score.
        Rows b*n .. b*n+n-1 belong to input b. stop_at_eos=False always makes max_new_tokens tokens
        (benchmarks) and then returns them all, EOS included. `prefix` [B, P], padded on the right with
        pad: tokens each sequence is forced to begin with (HumanEval's prompt), neither returned nor scored;
        each row then still makes up to max_new_tokens tokens of its own.

        Sampling draws one uniform number per row and step from `generator` (every row at every step,
        finished or not, so a row's samples do not depend on the other rows) and takes the token where
        the distribution function of softmax(filtered logits / temperature) passes it.

        decoder_step: "eager", the CPU path, attends over the keys written so far, a shape that grows
        every step, and drops each row from the batch as soon as it has made EOS, so that the cost of
        a step follows the rows still decoding, not the longest one; "static" keeps every shape fixed
        (all rows, the whole cache, the unwritten part masked, the position a device tensor);
        "cuda-graph" records the static step once into a CUDA graph and replays it, which removes the
        per-kernel launch cost that dominates decoding at small batches. "auto" is "cuda-graph" on
        CUDA and "eager" elsewhere. All give the same tokens.
        """
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if decoder_step == "auto":
            decoder_step = "cuda-graph" if input_ids.device.type == "cuda" else "eager"
        if decoder_step not in DECODER_STEPS:
            raise ValueError(f"decoder_step must be 'auto' or one of {DECODER_STEPS}, got {decoder_step!r}")
        if decoder_step == "cuda-graph" and input_ids.device.type != "cuda":
            raise ValueError(f"decoder_step 'cuda-graph' needs CUDA tensors, got {input_ids.device}")
        was_training = self.training
        self.eval()
        try:
            return self._generate(input_ids, attention_mask, head, max_new_tokens, temperature, top_p,
                                  num_return_sequences, generator, stop_at_eos, decoder_step, prefix)
        finally:
            self.train(was_training)

    def _generate(self, input_ids, attention_mask, head, max_new_tokens, temperature, top_p,
                  num_return_sequences, generator, stop_at_eos, decoder_step, prefix=None):
        c, device = self.config, input_ids.device
        if prefix is None:
            prefix = torch.full((input_ids.shape[0], 0), c.pad_id, dtype=torch.long, device=device)
        prefix = prefix.repeat_interleave(num_return_sequences, dim=0)
        prefix_lengths = (prefix != c.pad_id).sum(dim=1).tolist()
        max_new_tokens += prefix.shape[1]   # the steps of the longest prefix come first
        encoded = self.encode(input_ids, attention_mask)
        dtype, layers, per_source = compute_dtype(encoded), self.decoder.layers, num_return_sequences
        # per source (sources in dim 2, read once per step by all rows of the source): cross-attention
        # keys/values [L, 2, sources, H, S, d] and mask; per row: the self-attention cache [L, 2, rows, H, T, d]
        cross_kv = torch.stack([torch.stack(layer.cross_attn.keys_values(encoded)) for layer in layers])
        cross_mask = padding_mask(attention_mask, dtype)
        sources = input_ids.shape[0]
        rows = sources * per_source
        cache = torch.zeros(len(layers), 2, rows, c.num_heads, max_new_tokens, c.d_kv, device=device, dtype=dtype)
        self_mask = self.decoder.self_mask(max_new_tokens, dtype, device)  # row t: the query at step t
        tokens = torch.full((rows, max_new_tokens), c.pad_id, dtype=torch.long, device=device)
        logprobs = torch.zeros(rows, dtype=torch.float32, device=device)
        finished = torch.zeros(rows, dtype=torch.bool, device=device)
        current = torch.full((rows,), c.pad_id, dtype=torch.long, device=device)
        position = torch.zeros(1, dtype=torch.long, device=device)
        nonfinite = torch.zeros(rows, dtype=torch.bool, device=device)
        # Eager decoding drops a row from the batch once it has finished, and a source once all its rows
        # have: the first len(live) rows of the per-row state decode the sequences in `live`, the first
        # len(live_sources) sources of the per-source state are the sources in `live_sources`, and source s
        # sits at place[s]. The fixed-shape steps keep every row (their shapes may not change) and mask the
        # finished ones.
        shrink = decoder_step == "eager" and stop_at_eos
        live, live_sources = torch.arange(rows, device=device), torch.arange(sources, device=device)
        place = torch.arange(sources, device=device)

        def step(t: int | torch.Tensor) -> torch.Tensor:
            """Logits [len(live), V] (fp32) of the tokens after `current`, which sit at position t."""
            n, s = len(live), len(live_sources)
            x = self.embedding(current[:n])[:, None]
            mask = self_mask.index_select(2, t) if isinstance(t, torch.Tensor) else self_mask[:, :, t:t + 1, :t + 1]
            slots = place[live // per_source] * per_source + live % per_source   # each row's query place
            for i, layer in enumerate(layers):
                x = layer(x, mask, cross_kv[i, :, :s], cross_mask[:s], cache=cache[i, :, :n], position=t,
                          slots=slots, per_source=per_source)
            return self.head_logits(self.decoder.final_norm(x)[:, 0], head).float()

        def remove(done: torch.Tensor, states) -> torch.Tensor:
            """Remove the entries marked `done` from the first len(done) entries of each (tensor, dim) of
            states: the kept entries past the new end move into the places of the removed ones before it
            (a copy of only as many entries as were removed). Returns the places the moved entries took."""
            keep = int((~done).sum())
            holes = done[:keep].nonzero()[:, 0]
            movers = keep + (~done[keep:]).nonzero()[:, 0]
            for state, dim in states:
                state.index_copy_(dim, holes, state.index_select(dim, movers))
            return holes

        def drop_finished(done: torch.Tensor) -> None:
            nonlocal live, live_sources
            remove(done, ((cache, 2), (current, 0), (live, 0)))
            live = live[:len(live) - int(done.sum())]
            over = finished.view(sources, per_source).all(dim=1)[live_sources]
            if bool(over.any()):
                holes = remove(over, ((cross_kv, 2), (cross_mask, 0), (live_sources, 0)))
                place[live_sources[holes]] = holes
                live_sources = live_sources[:len(live_sources) - int(over.sum())]

        if decoder_step == "cuda-graph":
            replay = cuda_graph(lambda: step(position))
        steps = 0
        for t in range(max_new_tokens):
            # a random number for every row at every step, as long as the fixed-shape steps would run: each
            # row draws the same numbers whichever rows are still in the batch, and the stream ends alike
            uniform = random_uniform(rows, temperature, generator, device)
            steps = t + 1
            if len(live):
                if decoder_step == "eager":
                    logits = step(t)
                else:
                    position.fill_(t)
                    logits = replay() if decoder_step == "cuda-graph" else step(position)
                # a row whose logits do not sum to a finite number has a nan or inf logit (finite float32
                # logits are far too small for their sum to overflow): its tokens are noted as garbage, and a
                # plain error is raised once decoding is done
                nonfinite[live] |= ~torch.isfinite(logits.sum(dim=-1))
                chosen = choose_tokens(logits, temperature, top_p, None if uniform is None else uniform[live])
                if t < prefix.shape[1]:
                    forced = prefix[live, t] != c.pad_id
                    chosen = torch.where(forced, prefix[live, t], chosen)
                else:
                    forced = torch.zeros_like(chosen, dtype=torch.bool)
                chosen = chosen.masked_fill(finished[live], c.pad_id)
                step_logprobs = torch.log_softmax(logits, dim=-1).gather(1, chosen[:, None])[:, 0]
                logprobs[live] += step_logprobs.masked_fill(finished[live] | forced, 0.0)
                tokens[live, t] = chosen
                current[:len(live)].copy_(chosen)  # in place: the recorded graph reads this buffer
                if stop_at_eos:
                    done = chosen == c.eos_id
                    finished[live] |= done
                    if shrink and bool(done.any()):
                        drop_finished(done)
            # checking costs a device sync, so only every few steps
            if stop_at_eos and t % 8 == 7 and bool(finished.all()):
                break
        if bool(nonfinite.any()):
            raise FloatingPointError(f"generate: the {head} head gave non-finite logits (nan or inf) for "
                                     f"{int(nonfinite.sum())} of {rows} sequences; the weights or inputs are not finite")
        rows = tokens[:, :steps].tolist()
        return [self._strip(row[skip:], stop_at_eos) for row, skip in zip(rows, prefix_lengths)], logprobs

    def _strip(self, row: list[int], stop_at_eos: bool) -> list[int]:
        if not stop_at_eos:
            return row
        if self.config.eos_id in row:
            row = row[:row.index(self.config.eos_id)]
        return [t for t in row if t != self.config.pad_id]

def cuda_graph(function) -> callable:
    """Record function() (no arguments: it reads and writes fixed buffers) into a CUDA graph; the
    result replays it and returns its output tensor, which the next replay overwrites.

    One eager call on a side stream first, as CUDA graphs require, initialises libraries and
    workspaces outside the recording. Autocast, when on, runs with its weight-cast cache off while
    recording: cached casts would be tensors the graph reads but does not own.
    """
    device = torch.device("cuda", torch.cuda.current_device())
    autocast = torch.autocast("cuda", dtype=torch.get_autocast_dtype("cuda"), enabled=torch.is_autocast_enabled("cuda"),
                              cache_enabled=False)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side), autocast:
        function()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), autocast:
        output = function()

    def replay() -> torch.Tensor:
        graph.replay()
        return output
    return replay


def filter_logits(logits: torch.Tensor, top_p: float = 1.0) -> torch.Tensor:
    """Set to -inf every logit outside the smallest set of most likely tokens whose probability reaches
    top_p (1.0: no limit). The most likely token always stays."""
    if top_p < 1.0:
        logits = logits.masked_fill(outside_nucleus(logits, top_p), float("-inf"))
    return logits


def outside_nucleus_by_sort(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """True for the tokens outside the nucleus: those whose more likely tokens (in sorted order)
    already hold top_p of the probability."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    return torch.zeros_like(mass_before, dtype=torch.bool).scatter(-1, order, mass_before >= top_p)


def outside_nucleus(logits: torch.Tensor, top_p: float, candidates: int = 64) -> torch.Tensor:
    """outside_nucleus_by_sort, exactly, without sorting the whole vocabulary (which costs about as much
    as the model's step on CPU): the nucleus almost always lies among the `candidates` most likely tokens,
    so only those are sorted (topk) and their probabilities taken from the whole row. A row goes the
    sorting way when its nucleus may reach past them, when the mass at its boundary is within float
    rounding of top_p, or when the boundary falls between tied logits: every row gets the same answer."""
    k = min(candidates, logits.shape[-1] - 1)
    if k < 1:
        return outside_nucleus_by_sort(logits, top_p)
    values, candidate = torch.topk(logits, k + 1, dim=-1)   # one more: the first token past a boundary at k
    probs = torch.softmax(logits, dim=-1).gather(-1, candidate)
    mass_before = probs.cumsum(dim=-1) - probs
    size = (mass_before < top_p).sum(dim=-1, keepdim=True).clamp(1, k)   # tokens in the nucleus (0 for nan rows)
    last, first_out = values.gather(-1, size - 1), values.gather(-1, size)
    margin = 1e-3   # far above the rounding of a float32 softmax over the vocabulary
    sure = ((mass_before.gather(-1, size - 1) < top_p - margin) & (mass_before.gather(-1, size) >= top_p + margin)
            & (last > first_out))[:, 0]
    outside = logits < last
    if not bool(sure.all()):
        unsure = (~sure).nonzero()[:, 0]
        outside[unsure] = outside_nucleus_by_sort(logits[unsure], top_p)
    return outside


def random_uniform(rows: int, temperature: float, generator: torch.Generator | None,
                   device: torch.device) -> torch.Tensor | None:
    """The random numbers of one sampling step: one uniform draw in [0, 1) per row; None when greedy."""
    if temperature <= 0:
        return None
    return torch.rand(rows, generator=generator, device=device)


def choose_tokens(logits: torch.Tensor, temperature: float, top_p: float,
                  uniform: torch.Tensor | None) -> torch.Tensor:
    """Greedy when temperature is 0, else a sample of softmax(filtered logits / temperature) by inverting
    its distribution function: the first token (in vocabulary order) whose cumulative probability exceeds
    uniform * total. One number per row and step, where torch.multinomial draws one per token."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    cumulative = torch.softmax(filter_logits(logits / temperature, top_p), dim=-1).cumsum(dim=-1)
    total = cumulative[:, -1:]
    # below the total, so that the token found has a probability above 0 even when uniform * total rounds up
    target = torch.minimum(uniform[:, None] * total, torch.nextafter(total, torch.zeros_like(total)))
    # a row with nan logits finds no token; it gets the last one, and generate reports the row
    return torch.searchsorted(cumulative, target, right=True)[:, 0].clamp(max=logits.shape[-1] - 1)


def _hf_key_map(config: ModelConfig) -> dict[str, list[str]]:
    """Our parameter name -> the HF T5ForConditionalGeneration key(s) it is made of (stacked in order)."""
    mapping = {"embedding.weight": ["shared.weight"]}
    if not config.tie_word_embeddings:
        mapping["lm_head.weight"] = ["lm_head.weight"]
    ff = ["wi_0", "wi_1"] if config.feed_forward == "gated-gelu" else ["wi"]
    for stack, count in (("encoder", config.num_layers), ("decoder", config.num_decoder_layers)):
        mapping[f"{stack}.relative_attention_bias.weight"] = [
            f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        mapping[f"{stack}.final_norm.weight"] = [f"{stack}.final_layer_norm.weight"]
        for i in range(count):
            ours, hf = f"{stack}.layers.{i}", f"{stack}.block.{i}.layer"
            mapping[f"{ours}.self_attn_norm.weight"] = [f"{hf}.0.layer_norm.weight"]
            mapping[f"{ours}.self_attn.qkv.weight"] = [f"{hf}.0.SelfAttention.{n}.weight" for n in "qkv"]
            mapping[f"{ours}.self_attn.o.weight"] = [f"{hf}.0.SelfAttention.o.weight"]
            ff_layer = 1
            if stack == "decoder":
                ff_layer = 2
                mapping[f"{ours}.cross_attn_norm.weight"] = [f"{hf}.1.layer_norm.weight"]
                mapping[f"{ours}.cross_attn.q.weight"] = [f"{hf}.1.EncDecAttention.q.weight"]
                mapping[f"{ours}.cross_attn.kv.weight"] = [f"{hf}.1.EncDecAttention.{n}.weight" for n in "kv"]
                mapping[f"{ours}.cross_attn.o.weight"] = [f"{hf}.1.EncDecAttention.o.weight"]
            mapping[f"{ours}.ff_norm.weight"] = [f"{hf}.{ff_layer}.layer_norm.weight"]
            mapping[f"{ours}.ff.wi.weight"] = [f"{hf}.{ff_layer}.DenseReluDense.{n}.weight" for n in ff]
            mapping[f"{ours}.ff.wo.weight"] = [f"{hf}.{ff_layer}.DenseReluDense.wo.weight"]
    return mapping


@torch.no_grad()
def load_hf_t5_state_dict(model: CodePlanModel, state_dict: dict[str, torch.Tensor]) -> None:
    """Load a Hugging Face T5ForConditionalGeneration state dict (T5, CodeT5) into `model`, then copy
    the code head into the plan head. Raises CheckpointError naming missing, unexpected or misshapen keys.

    Tied models ignore lm_head.weight when it equals shared.weight (transformers 5 always ties it);
    untied models take lm_head.weight, or shared.weight when the checkpoint has no separate head.
    """
    mapping = _hf_key_map(model.config)
    if not model.config.tie_word_embeddings and "lm_head.weight" not in state_dict:
        mapping["lm_head.weight"] = ["shared.weight"]
    used = {key for keys in mapping.values() for key in keys}
    missing = sorted(key for key in used if key not in state_dict)
    if missing:
        raise CheckpointError(f"T5 state dict: missing {len(missing)} key(s): {', '.join(missing[:8])}")
    shared = state_dict["shared.weight"]
    copies_of_shared = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}
    ignorable = {"decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"}  # unused by HF too
    for key in sorted(set(state_dict) - used):
        if key in copies_of_shared:
            if state_dict[key].shape != shared.shape or not torch.equal(state_dict[key], shared):
                raise CheckpointError(f"T5 state dict: {key} differs from shared.weight; an untied head needs "
                                      f"ModelConfig(tie_word_embeddings=False)")
        elif key not in ignorable:
            raise CheckpointError(f"T5 state dict: unexpected key {key} (does the config match the checkpoint?)")
    params = dict(model.named_parameters())
    for ours, keys in mapping.items():
        value = torch.cat([state_dict[key] for key in keys], dim=0)
        if value.shape != params[ours].shape:
            raise CheckpointError(f"T5 state dict: {' + '.join(keys)} has shape {tuple(value.shape)}, the model "
                                  f"expects {tuple(params[ours].shape)} for {ours}")
        params[ours].copy_(value)
    model.copy_code_head_to_plan_head()


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file (needs the safetensors package) or a torch .bin/.pt file."""
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError as error:
            raise CheckpointError(f"{path}: reading .safetensors needs `pip install safetensors`") from error
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def from_pretrained_t5(folder: str, quiet: bool = False, **overrides) -> CodePlanModel:
    """Build a CodePlanModel from a Hugging Face T5/CodeT5 folder on disk (config.json plus
    model.safetensors or pytorch_model.bin). overrides change config fields (e.g. dropout)."""
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        raise CheckpointError(f"{config_path}: not found (expected a Hugging Face T5 checkpoint folder)")
    with open(config_path) as f:
        config = ModelConfig.from_hf_config(json.load(f))
    unknown = set(overrides) - {f.name for f in fields(ModelConfig)}
    if unknown:
        raise ValueError(f"from_pretrained_t5: unknown config fields {sorted(unknown)}")
    for name, value in overrides.items():
        setattr(config, name, value)
    weights = [os.path.join(folder, name) for name in ("model.safetensors", "pytorch_model.bin")]
    weights = [path for path in weights if os.path.exists(path)]
    if not weights:
        raise CheckpointError(f"{folder}: no model.safetensors or pytorch_model.bin")
    model = CodePlanModel(config, quiet=quiet)
    load_hf_t5_state_dict(model, read_state_dict(weights[0]))
    return model
