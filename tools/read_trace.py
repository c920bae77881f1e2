#!/usr/bin/env python3
"""Reads a polymoe routing trace (*.trace, version 1) into numpy arrays, without polymoe.

    from read_trace import read_trace
    header, cols = read_trace("base.trace")
    cols["expert"]  # [R, T, K] uint16 top-k expert ids (rank order); cols["weight"] the weights
    cols["lang"], cols["doc"], cols["passage"], cols["position"], cols["token"]  # [T]
Format: docs/formats.md (and src/trace/trace_file.h). A torn last chunk (crash) is skipped.
"""
import json
import sys

import numpy as np


def read_trace(path):
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    assert bytes(buf[:8]) == b"PMTRACE\0", f"{path}: not a polymoe trace"
    version, hb, E, K, R, flags = (int(x) for x in buf[8:32].view("<u4"))
    assert version == 1, f"{path}: version {version}, expected 1"
    header = json.loads(bytes(buf[64:64 + hb]))
    header.update(num_experts=E, top_k=K, has_logits=bool(flags & 1))
    pad8 = lambda n: (n + 7) // 8 * 8
    off, parts = 64 + (hb + 63) // 64 * 64, []
    while off + 16 <= len(buf) and bytes(buf[off:off + 4]) == b"CHNK":
        n = int(buf[off + 4:off + 8].view("<u4")[0])
        size = int(buf[off + 8:off + 16].view("<u8")[0])
        if off + size > len(buf):
            break  # torn last chunk
        p, c = off + 16, {}
        for name, dt, count in [("lang", "<u2", n), ("doc", "<u4", n), ("passage", "<i4", n),
                                ("position", "<u4", n), ("token", "<u4", n),
                                ("expert", "<u2", R * n * K), ("weight", "<f4", R * n * K)] + (
                                    [("logits", "<f4", R * n * E)] if flags & 1 else []):
            nbytes = count * np.dtype(dt).itemsize
            c[name] = buf[p:p + nbytes].view(dt)
            p += pad8(nbytes)
        for name, last in [("expert", K), ("weight", K), ("logits", E)]:
            if name in c:
                c[name] = c[name].reshape(R, n, last)
        parts.append(c)
        off += size
    axis = {"expert": 1, "weight": 1, "logits": 1}
    cols = {k: np.concatenate([c[k] for c in parts], axis=axis.get(k, 0)) for k in parts[0]}
    return header, cols


if __name__ == "__main__":
    h, cols = read_trace(sys.argv[1])
    print(json.dumps({k: v for k, v in h.items() if k != "languages"}),
          [l["code"] for l in h["languages"]], {k: v.shape for k, v in cols.items()})
