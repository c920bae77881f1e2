#!/usr/bin/env python3
"""PyTorch reference timings of the OLMoE forward and training step, next to `polymoe bench`.

`forward`: the forward with all logits, written the way HF OlmoeForCausalLM computes in eager mode
(per-expert loop over the tokens routed to it, index_add back), in float32 or bfloat16 weights,
for `bench/forward_vs_torch.sh`. Defaults: OLMoE's real dimensions with 2 layers, S = 512.

`train`: training steps the way HF trains (per-expert loop with index_add, f32 master weights):
forward on a [B, S] batch, loss = CE + 0.01 * HF load-balancing aux + 0.001 * z-loss (polymoe's
`--objective hf_z`), backward, clip_grad_norm_(1.0), torch.optim.AdamW, for
`bench/train_vs_torch.sh`. `--compute bf16` runs the forward under torch.autocast(cpu, bfloat16)
(matmuls in bf16 on f32 master weights, backward through the casts), the counterpart of
`polymoe train --compute bf16`. Defaults: the `tiny` preset, B x S = 8 x 256.

Each prints one JSON line with the median time, in the fields of `polymoe bench`, with torch's own
threads set to --threads. Run with Debian's python, e.g.
  /usr/bin/python3 tools/bench_torch.py forward --layers 2 --seq 512 --dtype bf16
  /usr/bin/python3 tools/bench_torch.py train --layers 4 --hidden 256 --heads 8 --experts 16 \
      --topk 4 --inter 128 --batch 8 --seq 256
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn.functional as F


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


def loss_fn(p, ids, a):
    B, S = ids.shape
    H, NH, E, K = a.hidden, a.heads, a.experts, a.topk
    HD = H // NH
    x = p["embed"][ids]
    inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
    ang = torch.outer(torch.arange(S).float(), inv)
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    aux, z = 0.0, 0.0
    for l in p["layers"]:
        h = rms(x, l["in"])
        q = rms(h @ l["q"].T, l["qn"]).view(B, S, NH, HD).transpose(1, 2)
        k = rms(h @ l["k"].T, l["kn"]).view(B, S, NH, HD).transpose(1, 2)
        v = (h @ l["v"].T).view(B, S, NH, HD).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        s_ = (q @ k.transpose(-1, -2)) / HD ** 0.5  # torch 1.13 has no fused SDPA
        s_ = s_.masked_fill(torch.triu(torch.ones(S, S, dtype=torch.bool), 1), float("-inf"))
        att = torch.softmax(s_, -1) @ v
        x = x + att.transpose(1, 2).reshape(B, S, H) @ l["o"].T
        h = rms(x, l["post"]).view(B * S, H)
        logits = h @ l["gate"].T
        probs = torch.softmax(logits, -1)
        w, sel = torch.topk(probs, K, -1)
        out = torch.zeros_like(h)
        mask = F.one_hot(sel, E).permute(2, 1, 0)
        for e in range(E):
            rank, tok = torch.where(mask[e])
            if tok.numel() == 0:
                continue
            xe = h[tok]
            ye = (F.silu(xe @ l["wg"][e].T) * (xe @ l["wu"][e].T)) @ l["wd"][e].T
            out = out.index_add(0, tok, (ye * w[tok, rank, None]).to(out.dtype))
        x = x + out.view(B, S, H)
        frac = F.one_hot(sel, E).float().mean(0)          # [K, E] share of slots per rank
        aux = aux + E * (frac * probs.mean(0)[None]).sum()
        z = z + torch.logsumexp(logits, -1).pow(2).mean()
    L = len(p["layers"])
    out = rms(x, p["norm"]) @ p["head"].T
    ce = F.cross_entropy(out[:, :-1].reshape(-1, a.vocab), ids[:, 1:].reshape(-1))
    return ce + 0.01 * aux / L + 0.001 * z / L


def run_forward(a):
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
    ids = torch.randint(0, min(a.vocab, 50280), (1, a.seq))
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


def run_train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    H, I, E = a.hidden, a.inter, a.experts
    r = lambda *s: (torch.randn(*s) * 0.02).requires_grad_()
    one = lambda n: torch.ones(n, requires_grad=True)
    p = {"embed": r(a.vocab, H), "head": r(a.vocab, H), "norm": one(H), "layers": [
        {"in": one(H), "post": one(H), "qn": one(H), "kn": one(H), "q": r(H, H), "k": r(H, H),
         "v": r(H, H), "o": r(H, H), "gate": r(E, H),
         # One tensor per expert, as HF's nn.ModuleList of experts holds them: slicing one
         # stacked [E, I, H] parameter per expert would make autograd build a full-size zero
         # gradient for every slice (E^2 work, minutes per step at real dimensions).
         "wg": [r(I, H) for _ in range(E)], "wu": [r(I, H) for _ in range(E)],
         "wd": [r(H, I) for _ in range(E)]} for _ in range(a.layers)]}
    params = [p["embed"], p["head"], p["norm"]]
    for l in p["layers"]:
        for t in l.values():
            params += t if isinstance(t, list) else [t]
    opt = torch.optim.AdamW(params, lr=4e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    ids = torch.randint(0, min(a.vocab, 50280), (a.batch, a.seq))
    times = []
    for step in range(a.steps + 1):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.compute == "bf16"):
            loss = loss_fn(p, ids, a)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step > 0:  # the first step allocates optimizer state
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({"bench": "train", "impl": f"pytorch {torch.__version__}", "L": a.layers,
                      "H": H, "E": E, "K": a.topk, "I": I, "V": a.vocab, "B": a.batch,
                      "S": a.seq, "dtype": "f32", "compute": a.compute, "threads": a.threads,
                      "steps": a.steps,
                      "median_s": med, "tokens_per_s": a.batch * a.seq / med,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    fw = sub.add_parser("forward", help="time the forward with all logits")
    for name, default in [("layers", 2), ("hidden", 2048), ("heads", 16), ("experts", 64),
                          ("topk", 8), ("inter", 1024), ("vocab", 50304), ("seq", 512),
                          ("threads", 2), ("repeats", 3)]:
        fw.add_argument(f"--{name}", type=int, default=default)
    fw.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    tr = sub.add_parser("train", help="time training steps (forward, backward, clip, AdamW)")
    for name, default in [("layers", 4), ("hidden", 256), ("heads", 8), ("experts", 16),
                          ("topk", 4), ("inter", 128), ("vocab", 50304), ("batch", 8),
                          ("seq", 256), ("threads", 2), ("steps", 5)]:
        tr.add_argument(f"--{name}", type=int, default=default)
    tr.add_argument("--compute", choices=["f32", "bf16"], default="f32")
    a = ap.parse_args()
    if a.what == "forward":
        run_forward(a)
    else:
        run_train(a)


if __name__ == "__main__":
    main()
