#!/usr/bin/python3
"""Gradient goldens for polymoe's backward: float64 gradients of the training objectives.

    /usr/bin/python3 tools/make_grad_goldens.py --fixtures tests/fixtures

For the cases micro, micro_norm_topk, micro_padded and micro_gqa this loads the committed
model.safetensors, tokens.npy and attention_mask.npy (if any), runs the float64 reference forward
of tools/olmoe_reference.py with requires_grad on every parameter, and writes
<case>/grads.safetensors (F64): per objective o in ce, hf, hf_z, olmoe `loss.<o>` [1], then
`grad.<o>.<HF param name>` (same shape as the parameter), in that order.

Objectives (DESIGN.md "Exact loss definitions"): ce; hf = ce + router_aux_loss_coef * aux;
hf_z = hf + 0.001 * z; olmoe = ce + megablocks_lb + megablocks_z. Top-k selections and counts
carry no gradient; gradients flow through the routing weights, the softmax probabilities of
aux / megablocks_lb and the logsumexp of the z losses. The embedding row of pad_token_id gets
no gradient (HF padding_idx): it is zero in every grad.<o>.model.embed_tokens.weight.
Parameters that receive no gradient (an expert no token is routed to) get zeros.

The graph is taken from olmoe_reference.forward itself (its local `out` dict at return, before
detaching), so the gradients are those of exactly the reference computation. The script checks
that the reference's losses still equal golden.safetensors (|diff| < 1e-12) and checks one
gradient entry per case and objective by a central finite difference in float64.
Deterministic (one torch thread): two runs give identical bytes. Also rewrites
<fixtures>/SHA256SUMS (existing order and format, the new files added; --no-sums skips this).
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import olmoe_reference as ref  # noqa: E402
import safetensors_py as st  # noqa: E402

CASES = ["micro", "micro_norm_topk", "micro_padded", "micro_gqa"]
OBJECTIVES = ["ce", "hf", "hf_z", "olmoe"]
GOLDEN_LOSSES = ["ce", "aux", "z", "megablocks_lb", "megablocks_z", "hf_total", "olmoe_total"]
LOSS_TOL = 1e-12
FD_STEP = 1e-5
# One entry per case for the finite-difference check: (parameter, flat index). Layer 0's router
# gate: its gradient has a contribution from every objective term (ce through the routing
# weights, aux / megablocks_lb through p, z through lse).
FD_ENTRY = ("model.layers.0.mlp.gate.weight", 37)


def forward_graph(params, config, ids, mask):
    """Runs ref.forward and returns its internal `out` dict (torch tensors still in the graph)."""
    captured = {}
    code = ref.forward.__code__

    def hook(frame, event, arg):
        if event == "return" and frame.f_code is code:
            captured["out"] = frame.f_locals["out"]

    old = sys.getprofile()
    sys.setprofile(hook)
    try:
        ref.forward(params, config, ids, mask)
    finally:
        sys.setprofile(old)
    out = captured["out"]
    assert all(isinstance(out["loss." + k], torch.Tensor) for k in GOLDEN_LOSSES)
    return out


def objectives(losses, coef):
    """{objective: scalar} from the reference's loss terms (torch tensors or floats)."""
    hf = losses["ce"] + coef * losses["aux"]
    return {"ce": losses["ce"], "hf": hf, "hf_z": hf + 0.001 * losses["z"],
            "olmoe": losses["ce"] + losses["megablocks_lb"] + losses["megablocks_z"]}


def objective_values(params_np, config, ids, mask):
    """Float objectives from a plain (no-grad) reference forward, for finite differences."""
    with torch.no_grad():
        out = ref.forward(params_np, config, ids, mask)
    losses = {k: float(out["loss." + k][0]) for k in GOLDEN_LOSSES}
    return objectives(losses, float(config["router_aux_loss_coef"]))


def make_case(fixtures, name, log):
    d = os.path.join(fixtures, name)
    with open(os.path.join(d, "config.json")) as f:
        config = json.load(f)
    assert not config.get("tie_word_embeddings", False)  # pad-row rule below assumes untied
    weights, _ = st.load_file(os.path.join(d, "model.safetensors"))
    names = list(weights)  # file order (by data offset)
    params_np = {k: v.astype(np.float64) for k, v in weights.items()}
    ids = np.load(os.path.join(d, "tokens.npy"))
    mpath = os.path.join(d, "attention_mask.npy")
    mask = np.load(mpath) if os.path.exists(mpath) else None
    golden, _ = st.load_file(os.path.join(d, "golden.safetensors"))

    leaves = {k: torch.from_numpy(params_np[k].copy()).requires_grad_(True) for k in names}
    out = forward_graph(leaves, config, ids, mask)
    for k in GOLDEN_LOSSES:
        diff = abs(float(out["loss." + k]) - float(golden["loss." + k][0]))
        assert diff < LOSS_TOL, (name, k, diff)

    coef = float(config["router_aux_loss_coef"])
    losses = {k: out["loss." + k] for k in GOLDEN_LOSSES}
    objs = objectives(losses, coef)
    pad = int(config["pad_token_id"])
    res = {}
    lines = [f"{name:16s} losses match golden.safetensors (< {LOSS_TOL:g}); pad row {pad} zeroed"]
    for o in OBJECTIVES:
        loss = objs[o]
        grads = torch.autograd.grad(loss, [leaves[k] for k in names], retain_graph=True,
                                    allow_unused=True)
        res["loss." + o] = np.array([float(loss)], dtype=np.float64)
        gd = {}
        for k, g in zip(names, grads):
            a = np.zeros(params_np[k].shape) if g is None else g.detach().numpy().copy()
            if k == "model.embed_tokens.weight":
                a[pad, :] = 0.0
            gd[k] = a.astype(np.float64)
            res[f"grad.{o}.{k}"] = gd[k]

        # central finite difference of one entry
        pname, flat = FD_ENTRY
        w0 = params_np[pname].reshape(-1)[flat]
        vals = []
        for sgn in (+1, -1):
            p2 = dict(params_np)
            a = params_np[pname].copy()
            a.reshape(-1)[flat] = w0 + sgn * FD_STEP
            p2[pname] = a
            vals.append(objective_values(p2, config, ids, mask)[o])
        fd = (vals[0] - vals[1]) / (2 * FD_STEP)
        an = float(gd[pname].reshape(-1)[flat])
        relerr = abs(fd - an) / max(abs(an), 1e-300)
        assert relerr < 1e-6, (name, o, fd, an, relerr)
        lines.append(f"{'':16s} {o:6s} loss {float(loss):.15g}  FD {pname}[{flat}]: "
                     f"autograd {an:.12e} fd {fd:.12e} rel {relerr:.2e}")
    st.save_file(res, os.path.join(d, "grads.safetensors"))
    for s in lines:
        log(s)


def add_to_sums(fixtures, new_rels):
    """Adds each of new_rels (if absent) to SHA256SUMS after its case's listed files (sorted
    within the case) and re-hashes every listed file, keeping the existing order and format."""
    path = os.path.join(fixtures, "SHA256SUMS")
    with open(path) as f:
        rels = [line.split("  ", 1)[1].rstrip("\n") for line in f if line.strip()]
    for new in new_rels:
        if new in rels:
            continue
        case = new.split("/", 1)[0]
        rows = [i for i, r in enumerate(rels) if r.startswith(case + "/")]
        case_files = sorted([rels[i] for i in rows] + [new])
        rels = rels[:rows[0]] + case_files + rels[rows[-1] + 1:]
    with open(path, "w") as f:
        for rel in rels:
            with open(os.path.join(fixtures, rel), "rb") as g:
                f.write(f"{hashlib.sha256(g.read()).hexdigest()}  {rel}\n")


def rewrite_sums(fixtures):
    add_to_sums(fixtures, [f"{name}/grads.safetensors" for name in CASES])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--no-sums", action="store_true", help="do not rewrite SHA256SUMS")
    args = ap.parse_args()
    torch.set_num_threads(1)  # fixed reduction order: the same bytes on every run
    for name in CASES:
        make_case(args.fixtures, name, lambda s: print(s, flush=True))
    if not args.no_sums:
        rewrite_sums(args.fixtures)
    total = sum(os.path.getsize(os.path.join(args.fixtures, n, "grads.safetensors")) for n in CASES)
    print(f"grads.safetensors total {total / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
