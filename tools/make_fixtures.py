#!/usr/bin/python3
"""Generates the golden fixtures of tests/fixtures (OLMoE forward + losses, float64 PyTorch).

    /usr/bin/python3 tools/make_fixtures.py --out tests/fixtures

Each case directory holds config.json, generation_config.json, the weights (model.safetensors,
or BF16 shards + model.safetensors.index.json; none for `tiny`, which the C++ test recreates with
`polymoe init --preset tiny --seed 7`), tokens.npy (int64 [B,S]), attention_mask.npy (int64
[B,S], padded cases only) and golden.safetensors (see tools/olmoe_reference.py for the names).
Also writes <out>/README.md and <out>/SHA256SUMS. Deterministic: two runs give identical bytes.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import olmoe_reference as ref  # noqa: E402
import polymoe_rng as rng  # noqa: E402
import safetensors_py as st  # noqa: E402

MICRO_WEIGHT_SEED = 42  # polymoe_rng streams for the micro cases' weights
TINY_INIT_SEED = 7  # `polymoe init --preset tiny --seed 7`
LINEAR_STD = 0.3  # micro: linear / embedding / bias std (not the 0.02 init: large margins)
NORM_STD = 0.1  # micro: norm weights 1 + 0.1 z


def olmoe_config(**over) -> dict:
    c = {
        "architectures": ["OlmoeForCausalLM"],
        "model_type": "olmoe",
        "vocab_size": 256,
        "hidden_size": 32,
        "intermediate_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-05,
        "use_cache": True,
        "pad_token_id": 1,
        "bos_token_id": None,
        "eos_token_id": 255,
        "tie_word_embeddings": False,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "clip_qkv": None,
        "num_experts_per_tok": 2,
        "num_experts": 8,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.01,
        "norm_topk_prob": False,
        "torch_dtype": "float32",
    }
    for k, v in over.items():
        assert k in c, k
        c[k] = v
    return c


TINY = dict(vocab_size=50304, hidden_size=256, intermediate_size=128, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=8, num_experts=16, num_experts_per_tok=4,
            eos_token_id=50279)

# name -> (config overrides, B, lengths or None, token seed, weight storage)
CASES = {
    "micro": (dict(), 2, None, 101, "f32"),
    "micro_norm_topk": (dict(norm_topk_prob=True), 2, None, 102, "f32"),
    "micro_gqa": (dict(num_key_value_heads=2), 2, None, 103, "f32"),
    "micro_clip": (dict(clip_qkv="auto"), 2, None, 104, "f32"),
    "micro_tied": (dict(tie_word_embeddings=True), 2, None, 105, "f32"),
    "micro_bias": (dict(attention_bias=True), 2, None, 106, "f32"),
    "micro_padded": (dict(), 3, [16, 11, 5], 107, "f32"),
    "micro_bf16_sharded": (dict(torch_dtype="bfloat16"), 2, None, 108, "bf16x3"),
    "tiny": (TINY, 2, None, 109, "init"),
}
MICRO_S, TINY_S = 16, 8
TINY_TOKEN_LIMIT = 50280  # the OLMoE tokenizer's 50280 ids


def micro_params(config: dict, seed: int) -> dict:
    """Weights for the micro cases, float32-representable float64 arrays:
    linear / embedding / bias = float32(0.3 z), norm weights = float32(1 + 0.1 z), z the polymoe_rng
    stream of (seed, HF name) in row-major order. The pad row is not zeroed."""
    out = {}
    for name, shape in rng.param_shapes(config).items():
        n = int(np.prod(shape))
        z = rng.normal(seed, name, n)
        a = (1.0 + NORM_STD * z) if rng.is_norm(name) else LINEAR_STD * z
        out[name] = a.astype(np.float32).astype(np.float64).reshape(shape)
    return out


def make_tokens(seed, B, S, V, lengths, pad):
    g = np.random.Generator(np.random.PCG64(seed))
    ids = g.integers(0, V, size=(B, S), dtype=np.int64)
    mask = None
    if lengths is not None:
        mask = np.zeros((B, S), dtype=np.int64)
        for b, n in enumerate(lengths):
            mask[b, :n] = 1
            ids[b, n:] = pad
    return ids, mask


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def generation_config(c):
    return {"_from_model_config": True, "bos_token_id": c["bos_token_id"],
            "eos_token_id": c["eos_token_id"], "pad_token_id": c["pad_token_id"]}


def golden_order(out, L, with_hidden=True):
    names = ["logits"]
    for l in range(L):
        names += [f"{k}.{l}" for k in ("router_logits", "router_probs", "topk_idx", "topk_weight",
                                       "routing_margin")]
        if with_hidden:
            names.append(f"hidden.{l}")
    names += ["loss.ce", "loss.aux", "loss.z", "loss.megablocks_lb", "loss.megablocks_z",
              "loss.hf_total", "loss.olmoe_total"]
    return {n: out[n] for n in names}


def margin_stats(out, L):
    m = np.concatenate([out[f"routing_margin.{l}"] for l in range(L)])
    return float(m.min()), float(np.median(m)), float(np.mean(m < 1e-6)), m.size


def choose_clip(params, config, ids, mask):
    """A clip_qkv that clamps ~25% of the q/k/v entries: the 0.75 quantile of |q|,|k|,|v| of the
    unclipped model, rounded to 2 significant digits."""
    dbg = {"qkv_abs": []}
    c = dict(config, clip_qkv=None)
    ref.forward(params, c, ids, mask, debug=dbg)
    q = float(np.quantile(np.concatenate(dbg["qkv_abs"]), 0.75))
    return float(f"{q:.2g}")


def make_case(name, out_dir, log):
    over, B, lengths, tok_seed, storage = CASES[name]
    over = dict(over)
    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    if storage == "init":
        config = olmoe_config(**over)
        S, Vtok = TINY_S, TINY_TOKEN_LIMIT
    else:
        config = olmoe_config(**{k: v for k, v in over.items() if v != "auto"})
        S, Vtok = MICRO_S, config["vocab_size"]
    ids, mask = make_tokens(tok_seed, B, S, Vtok, lengths, config["pad_token_id"])

    if storage == "init":
        params = rng.init_params(config, TINY_INIT_SEED)
    else:
        params = micro_params(config, MICRO_WEIGHT_SEED)
        if over.get("clip_qkv") == "auto":
            config["clip_qkv"] = choose_clip(params, config, ids, mask)
        if storage == "bf16x3":
            params = {k: st.round_to_bf16(v).astype(np.float64) for k, v in params.items()}

    write_json(os.path.join(d, "config.json"), config)
    write_json(os.path.join(d, "generation_config.json"), generation_config(config))
    np.save(os.path.join(d, "tokens.npy"), ids)
    if mask is not None:
        np.save(os.path.join(d, "attention_mask.npy"), mask)
    if storage == "f32":
        st.save_file({k: v.astype(np.float32) for k, v in params.items()},
                     os.path.join(d, "model.safetensors"))
    elif storage == "bf16x3":
        bits = {k: st.f32_to_bf16_bits(v.astype(np.float32)) for k, v in params.items()}
        st.save_sharded(bits, d, 3, dtypes={k: "BF16" for k in bits})
        back = st.load_checkpoint(d)  # the golden must use exactly the stored values
        assert all(np.array_equal(back[k], params[k]) for k in params)

    dbg = {}
    out = ref.forward(params, config, ids, mask, debug=dbg)
    L, K = config["num_hidden_layers"], config["num_experts_per_tok"]
    if config.get("norm_topk_prob"):
        s = np.concatenate([out[f"topk_weight.{l}"].sum(axis=1) for l in range(L)])
        assert np.max(np.abs(s - 1)) < 1e-12
    g = golden_order(out, L, with_hidden=storage != "init")
    if storage == "init":  # tiny: float32 golden
        g = {k: (v if k.startswith("topk_idx.") else v.astype(np.float32)) for k, v in g.items()}
    st.save_file(g, os.path.join(d, "golden.safetensors"))

    mn, med, frac, n = margin_stats(out, L)
    info = {"B": B, "S": S, "margin_min": mn, "margin_median": med, "margin_lt_1e-6": frac,
            "rows": n, "losses": {k[5:]: float(out[k][0]) for k in out if k.startswith("loss.")}}
    line = (f"{name:20s} B={B} S={S} margin min {mn:.3e} median {med:.3e} "
            f"frac<1e-6 {frac:.4f} ({n} rows)")
    if config.get("clip_qkv") is not None:
        line += f"\n{'':20s} clip_qkv={config['clip_qkv']} clipped fraction {dbg['clip_fraction']:.3f}"
        info["clip_qkv"] = config["clip_qkv"]
        info["clip_fraction"] = dbg["clip_fraction"]
    line += "\n" + "".join(f"{'':20s} {k:14s} {v:.10g}\n" for k, v in info["losses"].items()).rstrip()
    log(line)
    return info


README = """# Golden fixtures for the OLMoE forward (tests/golden/golden_test.cpp)

Generated by `tools/make_fixtures.py` with Debian's Python (`python3-torch` 1.13, `python3-numpy`)
from our own float64 PyTorch reference `tools/olmoe_reference.py` (written from the model and
loss semantics of the design document, i.e. Hugging Face `OlmoeForCausalLM`). Regenerate
everything (deterministic: identical bytes on every run) with

    /usr/bin/python3 tools/make_fixtures.py --out tests/fixtures

and verify with `cd tests/fixtures && sha256sum -c SHA256SUMS`. `tools/check_reference.py` runs
the reference's self-checks and negative controls. (`tokenizer/` is made by
`tools/make_tokenizer_goldens.js` and is not covered here.)

Every case directory: `config.json` (full OLMoE HF config), `generation_config.json`,
`tokens.npy` (int64 [B,S]), `attention_mask.npy` (int64 [B,S], 1 = token, 0 = padding; padded
case only), the weights, and `golden.safetensors`:
`logits` [B,S,V]; per layer l `router_logits.l` [T,E], `router_probs.l` [T,E], `topk_idx.l`
[T,K] (I64, rank order), `topk_weight.l` [T,K], `routing_margin.l` [T] (= p_(K) - p_(K+1)),
`hidden.l` [B,S,H] (residual stream after layer l); `loss.ce`, `loss.aux`, `loss.z`,
`loss.megablocks_lb`, `loss.megablocks_z`, `loss.hf_total`, `loss.olmoe_total` ([1]).
T = B*S, router row b*S + s. Goldens are F64 except `tiny` (F32, no `hidden.l`).

Micro weights (all `micro*` cases): not the 0.02 HF init, so that routing margins are large
and norms non-trivial: linear, embedding and bias weights float32(0.3 z), every RMSNorm weight
float32(1 + 0.1 z), z = the `polymoe_rng` stream (seed 42, HF parameter name), row-major; the pad
row is not zeroed. Tokens: `numpy.random.Generator(PCG64(seed))` integers in [0, V).

| case | what it covers |
|---|---|
| micro | micro preset (V 256, H 32, I 16, L 2, NH 4, KVH 4, E 8, K 2), B 2, S 16, F32 `model.safetensors` |
| micro_norm_topk | as micro, `norm_topk_prob: true` (top-k weights renormalised) |
| micro_gqa | `num_key_value_heads: 2` (GQA, head h uses kv head h // 2) |
| micro_clip | `clip_qkv` = 0.75 quantile of the unclipped |q|,|k|,|v| (2 digits): a real fraction clips |
| micro_tied | `tie_word_embeddings: true`, no `lm_head.weight` in the file |
| micro_bias | `attention_bias: true`, non-zero q/k/v/o biases |
| micro_padded | B 3, right padding (lengths 16, 11, 5; padded ids = pad 1), `attention_mask.npy`; `ce` and `aux` use the mask |
| micro_bf16_sharded | the micro weights rounded to bf16 (RNE), BF16 in 3 shards + `model.safetensors.index.json`, `torch_dtype: bfloat16`; golden from exactly those bf16 values |
| tiny | tiny preset (V 50304, H 256, I 128, L 4, NH 8, E 16, K 4), HF init 0.02; weights NOT stored: `polymoe init --preset tiny --seed 7` recreates them bit-exactly (`tools/polymoe_rng.py`); B 2, S 8, ids in [0, 50280); F32 golden without `hidden.l` |

Generation log (routing margins over all layers' rows; losses):

```
{log}
```
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    torch_threads()
    os.makedirs(args.out, exist_ok=True)
    lines = []

    def log(s):
        print(s, flush=True)
        lines.append(s)

    summary = {name: make_case(name, args.out, log) for name in args.cases}
    if set(args.cases) != set(CASES):
        print("(partial run: README.md and SHA256SUMS not rewritten)")
        return
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(README.replace("{log}", "\n".join(lines)))
    files = []
    for name in CASES:
        for fn in sorted(os.listdir(os.path.join(args.out, name))):
            files.append(f"{name}/{fn}")
    files.append("README.md")
    with open(os.path.join(args.out, "SHA256SUMS"), "w") as f:
        for rel in files:
            with open(os.path.join(args.out, rel), "rb") as g:
                f.write(f"{hashlib.sha256(g.read()).hexdigest()}  {rel}\n")
    total = sum(os.path.getsize(os.path.join(args.out, r)) for r in files)
    for name in CASES:
        dsz = sum(os.path.getsize(os.path.join(args.out, name, fn))
                  for fn in os.listdir(os.path.join(args.out, name)))
        print(f"{name:20s} {dsz / 1e6:8.3f} MB")
    print(f"total {total / 1e6:.3f} MB in {len(files)} files")
    return summary


def torch_threads():
    import torch
    torch.set_num_threads(1)  # fixed reduction order: the same bytes on every run


if __name__ == "__main__":
    main()
