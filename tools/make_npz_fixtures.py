#!/usr/bin/python3
"""NumPy-written .npz fixtures for the routing-table import and count-table analysis tests.

    /usr/bin/python3 tools/make_npz_fixtures.py --out tests/fixtures/npz

Writes, with numpy.savez (stored members) and numpy.savez_compressed (deflated members):
  table_<dtype>_{stored,compressed}.npz   one small per-token routing table (T = 12 tokens,
      L = 2 layers, K = 2, E = 5, two groups, four documents) with every integer column in
      <dtype> (uint8, int16, int32, int64, float32, float64) and weights in float32 / float64;
  table_bigendian.npz                     the same with '>i4' / '>f8' columns;
  table_minimal.npz                       only the required keys (lang, lang_names, topk_ids);
  counts_basic.npz                        a count table [2, 2, 5] (float64) with names, layers,
      top_k, plus unrelated keys that must be ignored;
  bad_*.npz                               hostile or invalid files (see BAD below);
and expected.json with the logical table every good file holds. Array contents are
deterministic; zip timestamps (numpy writes the current time) make the bytes differ per run,
so SHA256SUMS is rewritten on every run.
"""
import argparse
import hashlib
import io
import json
import os
import pickle
import zipfile

import numpy as np

LANG = [0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0]
DOC = [0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4]
TOKEN = [5, 6, 7, 5, 9, 9, 1, 2, 3, 4, 0, 8]
PASSAGE = [0, 0, 1, -1, -1, 0, 0, 1, 1, 2, 2, -1]
NAMES = ["spa", "glg"]
LAYERS = [3, 7]
# [T, L, K] distinct within each row, ids < 5.
IDS = [[[(t + l + 2 * k) % 5 for k in range(2)] for l in range(2)] for t in range(12)]
WEIGHTS = [[[0.5 - 0.125 * k + 0.0625 * ((t + l) % 3) for k in range(2)] for l in range(2)]
           for t in range(12)]


def table(int_dtype, float_dtype):
    return dict(
        lang=np.array(LANG, dtype=int_dtype),
        lang_names=np.array(NAMES),
        topk_ids=np.array(IDS, dtype=int_dtype),
        topk_weights=np.array(WEIGHTS, dtype=float_dtype),
        doc=np.array(DOC, dtype=int_dtype),
        token=np.array(TOKEN, dtype=int_dtype),
        # passage has -1 entries: a signed type even when the others are unsigned.
        passage=np.array(PASSAGE, dtype=np.int16 if int_dtype == np.uint8 else int_dtype),
        layers=np.array(LAYERS, dtype=int_dtype),
        num_experts=np.array(5, dtype=int_dtype),
        rank_ordered=np.array(True),
        position=np.array([0, 1, 2, 0, 1, 2, 3, 0, 1, 0, 1, 0], dtype=int_dtype),
        unrelated_extra=np.arange(3),
    )


def npy_bytes(descr, shape, data):
    """A .npy member with a hand-written header (for headers numpy would not write)."""
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


def zip_members(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)


def npy_of(arr):
    b = io.BytesIO()
    np.lib.format.write_array(b, arr, allow_pickle=False)
    return b.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".npz"):
            os.remove(os.path.join(out, f))

    for name, it, ft in [("uint8", np.uint8, np.float32), ("int16", np.int16, np.float32),
                         ("int32", np.int32, np.float64), ("int64", np.int64, np.float32),
                         ("float32", np.float32, np.float32), ("float64", np.float64, np.float64)]:
        np.savez(os.path.join(out, f"table_{name}_stored.npz"), **table(it, ft))
        np.savez_compressed(os.path.join(out, f"table_{name}_compressed.npz"), **table(it, ft))
    np.savez(os.path.join(out, "table_bigendian.npz"),
             **{k: (v.astype(v.dtype.newbyteorder(">")) if v.dtype.kind in "iuf" else v)
                for k, v in table(np.int32, np.float64).items()})
    t = table(np.int64, np.float32)
    np.savez(os.path.join(out, "table_minimal.npz"), lang=t["lang"], lang_names=t["lang_names"],
             topk_ids=t["topk_ids"])

    # Count table: slots per (group, layer, expert) of the table above, and extras to ignore.
    counts = np.zeros((2, 2, 5))
    for tok in range(12):
        for l in range(2):
            for e in IDS[tok][l]:
                counts[LANG[tok], l, e] += 1
    np.savez(os.path.join(out, "counts_basic.npz"), counts=counts, names=np.array(NAMES),
             layers=np.array(LAYERS, dtype=np.int16), top_k=np.array(2),
             position=np.arange(4), other_table=np.ones((3, 3, 3), dtype=np.int32))

    # Hostile and invalid files; each must fail with a clean error naming the key or file.
    good = table(np.int64, np.float32)
    def with_(**kw):
        d = dict(good)
        for k, v in kw.items():
            if v is None:
                d.pop(k)
            else:
                d[k] = v
        return d
    np.savez(os.path.join(out, "bad_missing_topk.npz"), **with_(topk_ids=None))
    np.savez(os.path.join(out, "bad_shape_mismatch.npz"),
             **with_(topk_ids=np.array(IDS[:11], dtype=np.int64)))
    np.savez(os.path.join(out, "bad_id_ge_e.npz"), **with_(num_experts=np.array(4)))
    dup = np.array(IDS, dtype=np.int64)
    dup[5, 1, 1] = dup[5, 1, 0]
    np.savez(os.path.join(out, "bad_duplicate_ids.npz"), **with_(topk_ids=dup))
    np.savez(os.path.join(out, "bad_doc_two_groups.npz"),
             **with_(doc=np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4])))
    np.savez(os.path.join(out, "bad_lang_strings.npz"),
             **with_(lang=np.array(["spa"] * 12)))
    np.savez(os.path.join(out, "bad_complex_ids.npz"),
             **with_(topk_ids=np.array(IDS, dtype=np.complex64)))
    np.savez(os.path.join(out, "bad_fractional_ids.npz"),
             **with_(topk_ids=np.array(IDS, dtype=np.float64) + 0.5))
    obj = np.empty(12, dtype=object)
    obj[:] = [{"tok": i} for i in range(12)]
    np.savez(os.path.join(out, "bad_object_array.npz"), **with_(lang=obj))
    # Hand-made members: shapes far larger than the data, and a byte-size overflow.
    members = {k + ".npy": npy_of(v) for k, v in good.items() if k != "topk_ids"}
    zip_members(os.path.join(out, "bad_huge_shape.npz"),
                dict(members, **{"topk_ids.npy": npy_bytes("<i8", "(12, 2, 1099511627776)",
                                                           bytes(8 * 48))}))
    zip_members(os.path.join(out, "bad_overflow_shape.npz"),
                dict(members, **{"topk_ids.npy": npy_bytes("<i8", "(4611686018427387904, 8)",
                                                           bytes(64))}))
    # A pickle under an .npz name (numpy.load would need allow_pickle), and a truncated archive.
    with open(os.path.join(out, "bad_pickle.npz"), "wb") as f:
        pickle.dump({"lang": [0, 1]}, f, protocol=2)
    with open(os.path.join(out, "table_int64_compressed.npz"), "rb") as f:
        whole = f.read()
    with open(os.path.join(out, "bad_truncated.npz"), "wb") as f:
        f.write(whole[: len(whole) * 2 // 3])

    expected = dict(lang=LANG, doc=DOC, token=TOKEN, passage=PASSAGE, names=NAMES, layers=LAYERS,
                    topk_ids=IDS, topk_weights=WEIGHTS, num_experts=5, top_k=2,
                    counts=counts.tolist())
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(__doc__.split("\n", 1)[1].lstrip())
    lines = []
    for fn in sorted(os.listdir(out)):
        if fn != "SHA256SUMS":
            with open(os.path.join(out, fn), "rb") as f:
                lines.append(f"{hashlib.sha256(f.read()).hexdigest()}  {fn}\n")
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
