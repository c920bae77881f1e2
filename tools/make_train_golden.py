#!/usr/bin/python3
"""Training-trajectory goldens for polymoe's trainer: 5 float64 AdamW steps, micro and tiny.

    /usr/bin/python3 tools/make_train_golden.py --fixtures tests/fixtures

Runs (case, objective -> file):
  micro olmoe -> micro/train_trajectory.safetensors
  micro hf    -> micro/train_trajectory_hf.safetensors
  tiny  olmoe -> tiny/train_trajectory.safetensors
  tiny  hf    -> tiny/train_trajectory_hf.safetensors
micro starts from tests/fixtures/micro/model.safetensors (widened to float64); tiny from
`polymoe init --preset tiny --seed 7` (tools/polymoe_rng.py init_params, bit-exact). Each trains
on the case's fixed batch tokens.npy (no mask) with objective `olmoe` = ce + megablocks_lb +
megablocks_z or `hf` = ce + router_aux_loss_coef * aux (DESIGN.md "Exact loss definitions"),
using the graph of tools/olmoe_reference.py exactly as tools/make_grad_goldens.py does (its
forward_graph / objectives are imported). Step t = 1..STEPS:
  1. forward on the current parameters, objective, backward; the pad_token_id row of the
     embedding gradient is zeroed (HF padding_idx); parameters with no gradient (an expert no
     token is routed to) get a zero gradient, so AdamW still decays them;
  2. grad_norm = sqrt(sum of squares of all parameter gradients), before clipping;
  3. clip as torch.nn.utils.clip_grad_norm_(params, max_norm=1.0): clip_coef =
     1 / (grad_norm + 1e-6), gradients multiplied by it only if clip_coef < 1;
  4. one torch.optim.AdamW step (betas (0.9, 0.95), eps 1e-8, weight_decay 0.1) on the float64
     parameters with param_group['lr'] = lr_t, where (peak 1e-2, warmup 2, steps 5,
     lr_min = 0.1 * peak) lr_t = peak * t / warmup for t <= warmup, else
     lr_min + (peak - lr_min) * (1 + cos(pi * (t - warmup - 1) / (steps - warmup))) / 2.
Each file (F64): `lr`, `loss` (objective before the update), `ce`, `aux`, `z`, `megablocks_lb`,
`megablocks_z`, `grad_norm` (each [STEPS]), then `final.<HF name>` after the last step: every
parameter for micro (model.safetensors order); for tiny (33M parameters) only the routers, the
norms, model.layers.0.self_attn.q_proj.weight and layer 3's expert 0 (1.4 MB instead of 265 MB).
Checks: step 1's losses equal <case>/golden.safetensors (< 1e-12 for micro's F64 golden, 1e-6
relative for tiny's F32 one) and, for micro, step 1's (unclipped) gradients equal
grad.<objective>.* of micro/grads.safetensors (< 1e-12). Deterministic (one torch thread): two
runs give identical bytes. Also adds the files to <fixtures>/SHA256SUMS and re-hashes every
listed file (existing order and format; --no-sums skips this).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import polymoe_rng as rng  # noqa: E402
import safetensors_py as st  # noqa: E402
from make_grad_goldens import GOLDEN_LOSSES, add_to_sums, forward_graph, objectives  # noqa: E402

RUNS = [("micro", "olmoe", "train_trajectory.safetensors"),
        ("micro", "hf", "train_trajectory_hf.safetensors"),
        ("tiny", "olmoe", "train_trajectory.safetensors"),
        ("tiny", "hf", "train_trajectory_hf.safetensors")]
TINY_INIT_SEED = 7  # as tools/make_fixtures.py: `polymoe init --preset tiny --seed 7`
STEPS, WARMUP, PEAK_LR = 5, 2, 1e-2
LR_MIN = 0.1 * PEAK_LR
BETAS, ADAM_EPS, WEIGHT_DECAY = (0.9, 0.95), 1e-8, 0.1
MAX_NORM, CLIP_EPS = 1.0, 1e-6
RECORDED = ["ce", "aux", "z", "megablocks_lb", "megablocks_z"]
CHECK_TOL = 1e-12


def lr_at(t):
    if t <= WARMUP:
        return PEAK_LR * t / WARMUP
    return LR_MIN + (PEAK_LR - LR_MIN) * (
        1 + math.cos(math.pi * (t - WARMUP - 1) / (STEPS - WARMUP))) / 2


def tiny_final(name):
    """The tiny parameters whose final values are stored (all would be 265 MB)."""
    return (name.endswith("mlp.gate.weight") or "norm" in name
            or name == "model.layers.0.self_attn.q_proj.weight"
            or name.startswith("model.layers.3.mlp.experts.0."))


def train(fixtures, case, objective, out_name, log):
    d = os.path.join(fixtures, case)
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    assert not config.get("tie_word_embeddings", False)  # pad-row rule assumes untied
    if case == "tiny":
        weights = rng.init_params(config, TINY_INIT_SEED)
        grads_golden = None
    else:
        weights, _ = st.load_file(os.path.join(d, "model.safetensors"))
        grads_golden, _ = st.load_file(os.path.join(d, "grads.safetensors"))
    names = list(weights)  # file (micro) or parameter-table (tiny) order
    ids = np.load(os.path.join(d, "tokens.npy"))
    golden, _ = st.load_file(os.path.join(d, "golden.safetensors"))
    pad = int(config["pad_token_id"])
    coef = float(config["router_aux_loss_coef"])

    params = {k: torch.from_numpy(weights[k].astype(np.float64)).requires_grad_(True)
              for k in names}
    plist = [params[k] for k in names]
    opt = torch.optim.AdamW(plist, lr=lr_at(1), betas=BETAS, eps=ADAM_EPS,
                            weight_decay=WEIGHT_DECAY)
    rec = {k: [] for k in ["lr", "loss"] + RECORDED + ["grad_norm"]}
    for t in range(1, STEPS + 1):
        lr = lr_at(t)
        opt.zero_grad(set_to_none=True)
        out = forward_graph(params, config, ids, None)
        losses = {k: out["loss." + k] for k in GOLDEN_LOSSES}
        loss = objectives(losses, coef)[objective]
        loss.backward()
        with torch.no_grad():
            for k in names:
                p = params[k]
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            params["model.embed_tokens.weight"].grad[pad].zero_()
            if t == 1:
                for k in GOLDEN_LOSSES:
                    ref_loss = float(golden["loss." + k][0])
                    diff = abs(float(losses[k]) - ref_loss)
                    tol = CHECK_TOL if grads_golden is not None else 1e-6 * abs(ref_loss)
                    assert diff <= tol, ("step-1 loss vs golden", k, diff)
                for k in names if grads_golden is not None else []:
                    diff = float(np.max(np.abs(params[k].grad.numpy()
                                               - grads_golden[f"grad.{objective}.{k}"])))
                    assert diff < CHECK_TOL, ("step-1 grad vs grads.safetensors", k, diff)
            grad_norm = math.sqrt(sum(float((p.grad * p.grad).sum()) for p in plist))
            torch_norm = float(torch.norm(torch.stack([torch.norm(p.grad, 2) for p in plist]), 2))
            assert abs(torch_norm - grad_norm) <= 1e-12 * grad_norm, (grad_norm, torch_norm)
            clip_coef = MAX_NORM / (grad_norm + CLIP_EPS)
            if clip_coef < 1.0:
                for p in plist:
                    p.grad.mul_(clip_coef)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        rec["lr"].append(lr)
        rec["loss"].append(float(loss))
        for k in RECORDED:
            rec[k].append(float(losses[k]))
        rec["grad_norm"].append(grad_norm)
        log(f"step {t}  lr {lr:.6g}  loss {float(loss):.15g}  ce {float(losses['ce']):.15g}  "
            f"aux {float(losses['aux']):.15g}  z {float(losses['z']):.15g}  "
            f"megablocks_lb {float(losses['megablocks_lb']):.15g}  "
            f"megablocks_z {float(losses['megablocks_z']):.15g}  grad_norm {grad_norm:.15g}  "
            f"clip_coef {min(clip_coef, 1.0):.15g}")

    res = {k: np.array(v, dtype=np.float64) for k, v in rec.items()}
    for k in names:
        if case != "tiny" or tiny_final(k):
            res["final." + k] = params[k].detach().numpy().astype(np.float64).copy()
    path = os.path.join(d, out_name)
    st.save_file(res, path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--no-sums", action="store_true", help="do not rewrite SHA256SUMS")
    args = ap.parse_args()
    torch.set_num_threads(1)  # fixed reduction order: the same bytes on every run
    for case, objective, out_name in RUNS:
        print(f"{case} {objective}:", flush=True)
        path = train(args.fixtures, case, objective, out_name, lambda s: print(s, flush=True))
        print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)
    if not args.no_sums:
        add_to_sums(args.fixtures, [f"{case}/{name}" for case, _, name in RUNS])


if __name__ == "__main__":
    main()
