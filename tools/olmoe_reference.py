#!/usr/bin/python3
"""Float64 PyTorch reference of Hugging Face `OlmoeForCausalLM` forward and polymoe's losses.

Written from the semantics in the design document ("Model semantics", "Exact loss
definitions"; summary in docs/math.md), not copied from transformers. Everything is computed in float64 (HF computes the router softmax and
the norms in float32; a float64 golden is the exact value those float32 computations approximate).

    out = forward(params, config, ids, attention_mask=None, variant="correct")

params: {HF name: array-like} (numpy or torch); config: the config.json dict; ids: int [B, S];
attention_mask: int [B, S] (1 token, 0 padding) or None. Returns {golden name: numpy array}:
logits [B,S,V]; per layer l router_logits.l [T,E], router_probs.l [T,E], topk_idx.l [T,K] int64,
topk_weight.l [T,K], routing_margin.l [T], hidden.l [B,S,H] (residual stream after layer l);
loss.ce, loss.aux, loss.z, loss.megablocks_lb, loss.megablocks_z, loss.hf_total,
loss.olmoe_total (shape [1]). T = B*S, router row index b*S + s.

variant (negative controls, deliberately wrong models):
    "correct"            HF OLMoE
    "interleaved_rope"   RoPE rotates pairs (2i, 2i+1) instead of (i, i + HD/2)
    "per_head_qk_norm"   q_norm / k_norm normalise each head's HD slice instead of the full width
    "renorm_topk"        top-k weights renormalised to sum 1 even when norm_topk_prob is false
"""
import numpy as np
import torch

VARIANTS = ("correct", "interleaved_rope", "per_head_qk_norm", "renorm_topk")
DT = torch.float64


def _t(a):
    if isinstance(a, torch.Tensor):
        return a.to(DT)
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def rms(x, w, eps, group=None):
    """x / sqrt(mean(x^2) + eps) * w over the last dim, or over consecutive `group`-wide slices."""
    shape = x.shape
    if group is not None:
        x = x.reshape(*shape[:-1], shape[-1] // group, group)
    y = x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps)
    return y.reshape(shape) * w


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def rope(x, theta, interleaved=False):
    """x [B, heads, S, HD]; positions 0..S-1 for every row; inv_freq_i = theta^(-2i/HD)."""
    S, HD = x.shape[-2], x.shape[-1]
    half = HD // 2
    i = torch.arange(half, dtype=DT)
    inv_freq = torch.pow(torch.tensor(float(theta), dtype=DT), -2.0 * i / HD)
    ang = torch.arange(S, dtype=DT)[:, None] * inv_freq[None, :]  # [S, half]
    c, s = torch.cos(ang), torch.sin(ang)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]
    else:
        x1, x2 = x[..., :half], x[..., half:]
    y1 = x1 * c - x2 * s
    y2 = x2 * c + x1 * s
    if interleaved:
        return torch.stack((y1, y2), dim=-1).reshape(x.shape)
    return torch.cat((y1, y2), dim=-1)


def attention(q, k, v, mask):
    """q [B,NH,S,HD], k/v [B,KVH,S,HD]; causal, padded keys masked; GQA head h -> kv h // group.
    A row with no visible key (impossible with right padding) gives zeros."""
    B, NH, S, HD = q.shape
    group = NH // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    scores = (q @ k.transpose(-1, -2)) * (HD ** -0.5)  # [B,NH,S,S]
    allowed = torch.ones(S, S, dtype=torch.bool).tril()[None, None]  # key j <= query i
    if mask is not None:
        allowed = allowed & (mask[:, None, None, :] != 0)
    allowed = allowed.expand(B, NH, S, S)
    scores = scores.masked_fill(~allowed, float("-inf"))
    any_key = allowed.any(dim=-1, keepdim=True)
    scores = torch.where(any_key, scores, torch.zeros_like(scores))
    p = torch.softmax(scores, dim=-1)
    p = torch.where(any_key, p, torch.zeros_like(p))
    return p @ v


def routing_margin(probs, k):
    """p_(k) - p_(k+1) per row (k-th largest minus (k+1)-th largest); p_(k) when k == E."""
    srt = torch.sort(probs, dim=-1, descending=True).values
    if k >= probs.shape[-1]:
        return srt[:, k - 1].clone()
    return srt[:, k - 1] - srt[:, k]


def forward(params, config, ids, attention_mask=None, variant="correct", debug=None):
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} not in {VARIANTS}")
    c = config
    P = {k: _t(v) for k, v in params.items()}
    ids = torch.as_tensor(np.asarray(ids), dtype=torch.int64)
    if ids.dim() == 1:
        ids = ids[None]
    B, S = ids.shape
    mask = None
    if attention_mask is not None:
        mask = torch.as_tensor(np.asarray(attention_mask), dtype=torch.int64).reshape(B, S)
    V, H = c["vocab_size"], c["hidden_size"]
    L, E, K = c["num_hidden_layers"], c["num_experts"], c["num_experts_per_tok"]
    NH = c["num_attention_heads"]
    KVH = c.get("num_key_value_heads") or NH
    HD = H // NH
    eps = float(c["rms_norm_eps"])
    theta = float(c.get("rope_theta", 10000.0))
    clip = c.get("clip_qkv")
    coef = float(c.get("router_aux_loss_coef", 0.01))
    renorm = bool(c.get("norm_topk_prob", False)) or variant == "renorm_topk"
    group = HD if variant == "per_head_qk_norm" else None
    T = B * S
    out = {}
    clipped = [0, 0]

    x = P["model.embed_tokens.weight"][ids]  # [B,S,H]
    all_logits, all_probs, all_idx = [], [], []
    for l in range(L):
        p = f"model.layers.{l}."
        g = lambda n: P.get(p + n)  # noqa: E731
        h = rms(x, g("input_layernorm.weight"), eps)
        q = linear(h, g("self_attn.q_proj.weight"), g("self_attn.q_proj.bias"))
        k = linear(h, g("self_attn.k_proj.weight"), g("self_attn.k_proj.bias"))
        v = linear(h, g("self_attn.v_proj.weight"), g("self_attn.v_proj.bias"))
        q = rms(q, g("self_attn.q_norm.weight"), eps, group)  # full NH*HD width unless variant
        k = rms(k, g("self_attn.k_norm.weight"), eps, group)  # full KVH*HD width unless variant
        if debug is not None and "qkv_abs" in debug:  # pre-clip magnitudes (to choose a clip)
            debug["qkv_abs"].append(torch.cat([a.abs().reshape(-1) for a in (q, k, v)]).numpy())
        if clip is not None:
            for a in (q, k, v):
                clipped[0] += int((a.abs() > clip).sum())
                clipped[1] += a.numel()
            q, k, v = (a.clamp(-clip, clip) for a in (q, k, v))
        q = q.reshape(B, S, NH, HD).transpose(1, 2)
        k = k.reshape(B, S, KVH, HD).transpose(1, 2)
        v = v.reshape(B, S, KVH, HD).transpose(1, 2)
        inter = variant == "interleaved_rope"
        q, k = rope(q, theta, inter), rope(k, theta, inter)
        a = attention(q, k, v, mask).transpose(1, 2).reshape(B, S, NH * HD)
        x = x + linear(a, g("self_attn.o_proj.weight"), g("self_attn.o_proj.bias"))

        h2 = rms(x, g("post_attention_layernorm.weight"), eps).reshape(T, H)
        logits = h2 @ g("mlp.gate.weight").T  # [T,E]
        probs = torch.softmax(logits, dim=-1)
        wts, idx = torch.topk(probs, K, dim=-1, largest=True, sorted=True)
        if renorm:
            wts = wts / wts.sum(dim=-1, keepdim=True)
        moe = torch.zeros(T, H, dtype=DT)
        for e in range(E):
            sel = idx == e  # [T,K]; at most one True per row
            rows = sel.any(dim=-1)
            if not bool(rows.any()):
                continue
            we = (wts * sel).sum(dim=-1)[rows]  # [n]
            xe = h2[rows]
            ep = f"mlp.experts.{e}."
            gt = linear(xe, g(ep + "gate_proj.weight"))
            up = linear(xe, g(ep + "up_proj.weight"))
            y = linear(torch.nn.functional.silu(gt) * up, g(ep + "down_proj.weight"))
            moe[rows] += we[:, None] * y
        x = x + moe.reshape(B, S, H)

        s = str(l)
        out["router_logits." + s] = logits
        out["router_probs." + s] = probs
        out["topk_idx." + s] = idx
        out["topk_weight." + s] = wts
        out["routing_margin." + s] = routing_margin(probs, K)
        out["hidden." + s] = x.clone()
        all_logits.append(logits)
        all_probs.append(probs)
        all_idx.append(idx)

    xf = rms(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else P["lm_head.weight"]
    lg = xf @ head.T  # [B,S,V]
    out["logits"] = lg

    # ---- losses -------------------------------------------------------------------------
    # ce: labels = ids (padding -> -100), shifted left by one, mean over non-ignored positions.
    labels = ids.clone()
    if mask is not None:
        labels[mask == 0] = -100
    sl = lg[:, :-1, :].reshape(-1, V)
    tl = labels[:, 1:].reshape(-1)
    valid = tl != -100
    logp = torch.log_softmax(sl, dim=-1)
    nll = -logp[valid].gather(1, tl[valid][:, None]).squeeze(1)
    ce = nll.mean()

    # aux (HF load_balancing_loss_func): all layers concatenated along the token axis.
    cat_logits = torch.cat(all_logits, dim=0)  # [L*T, E]
    cat_p = torch.softmax(cat_logits, dim=-1)
    cat_idx = torch.cat(all_idx, dim=0)  # [L*T, K] (same selection as the forward's)
    onehot = torch.nn.functional.one_hot(cat_idx, E).to(DT)  # [L*T, K, E]
    if mask is None:
        f = onehot.mean(dim=0)  # [K, E]
        Pm = cat_p.mean(dim=0)  # [E]
    else:
        rm = mask.reshape(-1).to(DT).repeat(L)  # row l*T + t -> mask[t]
        f = (onehot * rm[:, None, None]).sum(dim=0) / rm.sum()
        Pm = (cat_p * rm[:, None]).sum(dim=0) / rm.sum()
    aux = E * (f * Pm[None, :]).sum()

    # z (ST-MoE): mean over layers and all tokens of lse^2.
    lse = torch.stack([torch.logsumexp(z, dim=-1) for z in all_logits])  # [L, T]
    zl = (lse ** 2).mean()

    # OLMoE / megablocks form, all rows.
    count = torch.stack([torch.nn.functional.one_hot(i, E).sum(dim=(0, 1)).to(DT) for i in all_idx])
    Pl = torch.stack([pp.mean(dim=0) for pp in all_probs])  # [L, E]
    mb_lb = coef * E / (L * T * K) * (count * Pl).sum()
    mb_z = 0.001 * (lse ** 2).sum() / (L * T * K)

    out["loss.ce"] = ce
    out["loss.aux"] = aux
    out["loss.z"] = zl
    out["loss.megablocks_lb"] = mb_lb
    out["loss.megablocks_z"] = mb_z
    out["loss.hf_total"] = ce + coef * aux
    out["loss.olmoe_total"] = ce + mb_lb + mb_z

    if debug is not None:
        debug["clip_fraction"] = clipped[0] / clipped[1] if clipped[1] else 0.0
        debug["clip_count"] = tuple(clipped)

    res = {}
    for name, val in out.items():
        a = val.detach().numpy()
        if name.startswith("loss."):
            a = a.reshape(1)
        res[name] = a.astype(np.int64) if name.startswith("topk_idx.") else a.astype(np.float64)
    return res
