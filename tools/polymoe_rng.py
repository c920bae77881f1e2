#!/usr/bin/python3
"""numpy port of src/core/rng.h (counter-based normals) and of `polymoe init` (HF init).

Every value depends only on (seed, parameter name, element index):
    key   = splitmix64(seed ^ fnv1a64(name))
    u1    = ((splitmix64(key + 2i)     >> 11) + 0.5) * 2^-53
    u2    =  (splitmix64(key + 2i + 1) >> 11)        * 2^-53
    z_i   = sqrt(-2 ln u1) * cos(2 pi u2)          (Box-Muller, cos branch only)

Bit-exactness with the C++ code: the integer part uses np.uint64 with wraparound; log and cos
go through Python's `math` module, i.e. the same libm (glibc) functions the C++ std::log and
std::cos call. numpy's own SIMD log/cos (AVX-512 builds) are NOT correctly rounded and differ
from glibc in the last bit for a large fraction of inputs, so they must not be used here.

Run `/usr/bin/python3 tools/polymoe_rng.py` for a self-test.
"""
import math
import sys

import numpy as np

_M64 = (1 << 64) - 1
_INV53 = 1.0 / 9007199254740992.0
_TWO_PI = 6.283185307179586

_log = np.frompyfunc(math.log, 1, 1)
_cos = np.frompyfunc(math.cos, 1, 1)


def splitmix64_int(x: int) -> int:
    """Scalar splitmix64 on Python ints (reference for the vectorised version)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 on a np.uint64 array (wraparound arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def fnv1a64(name: str) -> int:
    h = 0xCBF29CE484222325
    for c in name.encode("utf-8"):
        h ^= c
        h = (h * 0x100000001B3) & _M64
    return h


def rng_key(seed: int, name: str) -> int:
    return splitmix64_int((seed & _M64) ^ fnv1a64(name))


def rng_normal_scalar(key: int, i: int) -> float:
    """The i-th standard normal of stream `key` (scalar, Python ints: the plain transcription)."""
    u1 = (float(splitmix64_int((key + 2 * i) & _M64) >> 11) + 0.5) * _INV53
    u2 = float(splitmix64_int((key + 2 * i + 1) & _M64) >> 11) * _INV53
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


def normal_key(key: int, n: int, start: int = 0) -> np.ndarray:
    """Elements start..start+n-1 of stream `key` as a float64 array."""
    i = np.arange(start, start + n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        base = np.uint64(key) + np.uint64(2) * i
        a = splitmix64(base) >> np.uint64(11)
        b = splitmix64(base + np.uint64(1)) >> np.uint64(11)
    u1 = (a.astype(np.float64) + 0.5) * _INV53
    u2 = b.astype(np.float64) * _INV53
    r = np.sqrt(-2.0 * _log(u1).astype(np.float64))  # sqrt is correctly rounded everywhere
    return r * _cos(_TWO_PI * u2).astype(np.float64)


def normal(seed: int, name: str, n: int) -> np.ndarray:
    """The first n normals of the stream for (seed, name), float64 (vectorised)."""
    return normal_key(rng_key(seed, name), n)


# ---------------------------------------------------------------------------------------------
# Parameter layout and HF init (mirrors src/model/params.cpp).


def param_shapes(c: dict) -> dict:
    """HF parameter names -> shapes, in polymoe's ParamTable order."""
    V, H, I = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
    NH = c["num_attention_heads"]
    KVH = c.get("num_key_value_heads") or NH
    HD = H // NH
    QW, KW, E = NH * HD, KVH * HD, c["num_experts"]
    s = {"model.embed_tokens.weight": (V, H)}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        s[p + "input_layernorm.weight"] = (H,)
        s[p + "self_attn.q_proj.weight"] = (QW, H)
        s[p + "self_attn.k_proj.weight"] = (KW, H)
        s[p + "self_attn.v_proj.weight"] = (KW, H)
        s[p + "self_attn.o_proj.weight"] = (H, QW)
        if c.get("attention_bias", False):
            s[p + "self_attn.q_proj.bias"] = (QW,)
            s[p + "self_attn.k_proj.bias"] = (KW,)
            s[p + "self_attn.v_proj.bias"] = (KW,)
            s[p + "self_attn.o_proj.bias"] = (H,)
        s[p + "self_attn.q_norm.weight"] = (QW,)
        s[p + "self_attn.k_norm.weight"] = (KW,)
        s[p + "post_attention_layernorm.weight"] = (H,)
        s[p + "mlp.gate.weight"] = (E, H)
        for kind, shape in (("gate_proj", (I, H)), ("up_proj", (I, H)), ("down_proj", (H, I))):
            for e in range(E):
                s[f"{p}mlp.experts.{e}.{kind}.weight"] = shape
    s["model.norm.weight"] = (H,)
    if not c.get("tie_word_embeddings", False):
        s["lm_head.weight"] = (V, H)
    return s


def is_norm(name: str) -> bool:
    return name.endswith("layernorm.weight") or name.endswith("_norm.weight") or name == "model.norm.weight"


def is_bias(name: str) -> bool:
    return name.endswith(".bias")


def init_params(config: dict, seed: int) -> dict:
    """`polymoe init --seed seed`: name -> float64 array holding float32-representable values.

    Linear and embedding weights: float32(initializer_range * z) with z the (seed, name) stream
    in row-major order (the double product rounded once to float32); biases zero; every RMSNorm
    weight one; the embedding row pad_token_id zeroed after the draw; no lm_head when tied.
    """
    std = float(config["initializer_range"])
    out = {}
    for name, shape in param_shapes(config).items():
        n = int(np.prod(shape))
        if is_norm(name):
            a = np.ones(n)
        elif is_bias(name):
            a = np.zeros(n)
        else:
            a = (std * normal(seed, name, n)).astype(np.float32).astype(np.float64)
        out[name] = a.reshape(shape)
    pad = config.get("pad_token_id")
    if pad is not None:
        out["model.embed_tokens.weight"][pad, :] = 0.0
    return out


def _self_test() -> int:
    key = rng_key(1234, "model.embed_tokens.weight")
    print(f"rng_key(1234, 'model.embed_tokens.weight') = {key:#018x}")
    vec = normal(1234, "model.embed_tokens.weight", 4)
    ok = True
    for i in range(4):
        s = rng_normal_scalar(key, i)
        print(f"rng_normal(key, {i}) = {s!r}")
        ok &= s == vec[i]
    # vectorised vs scalar on a longer, offset stretch (wraparound of key + 2i included)
    k2 = rng_key(2**64 - 1, "x")
    v2 = normal_key(k2, 1000, start=2**63 - 500)
    ok &= all(rng_normal_scalar(k2, 2**63 - 500 + j) == v2[j] for j in range(1000))
    z = normal(0, "stats", 200000)
    print(f"mean {z.mean():+.4f} std {z.std():.4f} (expect ~0, ~1)")
    print("vectorised == scalar:", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_self_test())
