#!/usr/bin/env python3
"""PyTorch reference timing of the OLMoE forward (all logits), for `bench/forward_vs_torch.sh`.

Written the way HF OlmoeForCausalLM computes in eager mode (per-expert loop over the tokens routed
to it, index_add back), in float32 or bfloat16, with torch's own threads set to --threads.
Prints one JSON line in the same format as `polymoe bench forward`.
Run with Debian's python: /usr/bin/python3 bench/torch_forward.py --layers 2 --seq 512 --dtype bf16
"""
import argparse
import json
import math
import statistics
import time

import torch


def rms(x, w, eps=1e-5):
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def forward(p, ids, a):
    S, H, NH, E, K = ids.shape[1], a.hidden, a.heads, a.experts, a.topk
    HD = H // NH
    x = p["embed"][ids]
    inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
    ang = torch.outer(torch.arange(S).float(), inv)
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    for l in p["layers"]:
        h = rms(x, l["in"])
        q = rms(h @ l["q"].T, l["qn"]).view(1, S, NH, HD).transpose(1, 2)
        k = rms(h @ l["k"].T, l["kn"]).view(1, S, NH, HD).transpose(1, 2)
        v = (h @ l["v"].T).view(1, S, NH, HD).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True) \
            if hasattr(torch.nn.functional, "scaled_dot_product_attention") else None
        if att is None:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(HD)
            s = s.masked_fill(torch.triu(torch.ones(S, S, dtype=torch.bool), 1), float("-inf"))
            att = torch.softmax(s.float(), -1).to(x.dtype) @ v
        x = x + att.transpose(1, 2).reshape(1, S, H) @ l["o"].T
        h = rms(x, l["post"]).view(S, H)
        probs = torch.softmax((h @ l["gate"].T).float(), -1)
        w, sel = torch.topk(probs, K, -1)
        w = w.to(h.dtype)
        out = torch.zeros_like(h)
        mask = torch.nn.functional.one_hot(sel, E).permute(2, 1, 0)
        for e in range(E):
            rank, tok = torch.where(mask[e])
            if tok.numel() == 0:
                continue
            xe = h[tok]
            ye = (torch.nn.functional.silu(xe @ l["wg"][e].T) * (xe @ l["wu"][e].T)) @ l["wd"][e].T
            out.index_add_(0, tok, ye * w[tok, rank, None])
        x = x + out.view(1, S, H)
    return (rms(x, p["norm"]) @ p["head"].T).float()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--inter", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50304)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dt = torch.float32 if a.dtype == "f32" else torch.bfloat16
    H, I, E = a.hidden, a.inter, a.experts
    r = lambda *s: (torch.randn(*s) * 0.02).to(dt)
    one = lambda n: torch.ones(n, dtype=dt)
    p = {"embed": r(a.vocab, H), "head": r(a.vocab, H), "norm": one(H), "layers": [
        {"in": one(H), "post": one(H), "qn": one(H), "kn": one(H), "q": r(H, H), "k": r(H, H),
         "v": r(H, H), "o": r(H, H), "gate": r(E, H), "wg": r(E, I, H), "wu": r(E, I, H),
         "wd": r(E, H, I)} for _ in range(a.layers)]}
    ids = torch.randint(0, 50280, (1, a.seq))
    times = []
    with torch.no_grad():
        forward(p, ids, a)
        for _ in range(a.repeats):
            t = time.perf_counter()
            forward(p, ids, a)
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"bench": "forward", "impl": f"pytorch {torch.__version__}", "L": a.layers,
                      "H": H, "E": E, "K": a.topk, "I": I, "V": a.vocab, "B": 1, "S": a.seq,
                      "dtype": a.dtype, "threads": a.threads, "repeats": a.repeats,
                      "median_s": med, "tokens_per_s": a.seq / med}))


if __name__ == "__main__":
    main()
