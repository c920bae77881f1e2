#!/usr/bin/python3
"""A large synthetic per-token routing table for measuring `polymoe trace import/export` speed
(not used by tests or CI; write it outside the repository):

    /usr/bin/python3 tools/make_big_table.py --tokens 10000000 --out /tmp/big_table.npz

T tokens, L = 4 layers, K = 8 of E = 64 experts, 4 groups, 1000-token documents; topk_ids int16
(distinct per row: a random rotation of 8 distinct ids), topk_weights float32, doc int32,
token int32, lang int16. Stored members (numpy.savez) unless --compressed.
"""
import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--out", required=True)
    ap.add_argument("--compressed", action="store_true")
    a = ap.parse_args()
    T, L, K, E = a.tokens, a.layers, 8, 64
    rng = np.random.default_rng(0)
    doc = (np.arange(T) // 1000).astype(np.int32)
    lang = (doc % 4).astype(np.int16)
    # Distinct ids per row: base + 8 * arange(8) mod 64 with a random base per (token, layer).
    base = rng.integers(0, 8, size=(T, L, 1), dtype=np.int16) + 8 * rng.integers(0, 8, size=(T, L, 1), dtype=np.int16)
    ids = ((base + 8 * np.arange(K, dtype=np.int16)) % E).astype(np.int16)
    w = rng.random((T, L, K), dtype=np.float32) / K
    tok = rng.integers(0, 50000, size=T, dtype=np.int32)
    save = np.savez_compressed if a.compressed else np.savez
    save(a.out, lang=lang, lang_names=np.array(["l0", "l1", "l2", "l3"]), topk_ids=ids,
         topk_weights=w, doc=doc, token=tok, num_experts=np.array(E))


if __name__ == "__main__":
    main()
