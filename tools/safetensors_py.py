#!/usr/bin/python3
"""A small hand-written safetensors reader/writer for numpy arrays, plus HF sharded checkpoints.

Format (github.com/huggingface/safetensors): u64 little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data
section. We write "__metadata__" first and the tensors in insertion order, contiguous, and pad
the header with spaces so that the data section starts at a multiple of 8 bytes.

dtypes: F64, F32, BF16 (numpy uint16 bit patterns), I64, I32.
"""
import json
import os
import struct

import numpy as np

_NP = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "BF16": np.dtype("<u2"),
       "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}


def f32_to_bf16_bits(a) -> np.ndarray:
    """float32 -> bf16 bit patterns (uint16), round to nearest even; NaN stays a (quiet) NaN."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    u = a.view(np.uint32).astype(np.uint64)  # room for the carry
    lsb = (u >> np.uint64(16)) & np.uint64(1)
    r = ((u + np.uint64(0x7FFF) + lsb) >> np.uint64(16)).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():  # keep sign, force a quiet-NaN mantissa bit so it cannot round to inf
        r[nan] = ((u[nan] >> np.uint64(16)).astype(np.uint16) | np.uint16(0x0040))
    return r


def bf16_bits_to_f32(b) -> np.ndarray:
    b = np.asarray(b, dtype=np.uint16)
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32)


def round_to_bf16(a) -> np.ndarray:
    """Values rounded (RNE, via float32) to bf16, returned as float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(np.asarray(a, dtype=np.float32)))


def _dtype_name(a: np.ndarray, dtype) -> str:
    if dtype is not None:
        return dtype
    k = a.dtype
    if k == np.float64:
        return "F64"
    if k == np.float32:
        return "F32"
    if k == np.int64:
        return "I64"
    if k == np.int32:
        return "I32"
    raise ValueError(f"unsupported numpy dtype {k} (pass dtype='BF16' for uint16 bf16 bits)")


def serialize(tensors, metadata=None, dtypes=None) -> bytes:
    """tensors: ordered {name: array}; dtypes: optional {name: 'BF16' | ...} overrides."""
    metadata = {"format": "pt"} if metadata is None else metadata
    dtypes = dtypes or {}
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    off = 0
    for name, a in tensors.items():
        dt = _dtype_name(np.asarray(a), dtypes.get(name))
        b = np.ascontiguousarray(np.asarray(a).astype(_NP[dt], copy=False)).tobytes()
        header[name] = {"dtype": dt, "shape": [int(d) for d in np.shape(a)],
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-(8 + len(h))) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def save_file(tensors, path, metadata=None, dtypes=None) -> int:
    data = serialize(tensors, metadata, dtypes)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def load_bytes(data: bytes):
    """-> (ordered {name: array}, metadata). BF16 comes back as uint16 bits; see load_file."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        dt = _NP[info["dtype"]]
        out[name] = np.frombuffer(data[base + b:base + e], dtype=dt).reshape(info["shape"]).copy()
        if info["dtype"] == "BF16":
            out[name] = out[name].view(np.uint16)
    return out, meta


def load_file(path, bf16_as_f32=True):
    """Reads a file; BF16 tensors are widened to float32 unless bf16_as_f32 is False."""
    with open(path, "rb") as f:
        t, meta = load_bytes(f.read())
    if bf16_as_f32:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n).decode("utf-8"))
        for name, info in header.items():
            if name != "__metadata__" and info["dtype"] == "BF16":
                t[name] = bf16_bits_to_f32(t[name])
    return t, meta


def shard_name(i: int, n: int) -> str:
    return f"model-{i + 1:05d}-of-{n:05d}.safetensors"


def save_sharded(tensors, directory, num_shards, dtypes=None):
    """HF sharded checkpoint: tensors split in order into num_shards files of about equal bytes,
    plus model.safetensors.index.json {"metadata": {"total_size": N}, "weight_map": {...}} with
    sorted keys. num_shards == 1 writes model.safetensors and no index. Returns the file names."""
    dtypes = dtypes or {}
    names = list(tensors)
    if num_shards <= 1:
        save_file(tensors, os.path.join(directory, "model.safetensors"), dtypes=dtypes)
        return ["model.safetensors"]
    sizes = []
    for name in names:
        dt = _dtype_name(np.asarray(tensors[name]), dtypes.get(name))
        sizes.append(int(np.prod(np.shape(tensors[name]), dtype=np.int64)) * _NP[dt].itemsize)
    total = sum(sizes)
    if len(names) < num_shards:
        raise ValueError(f"cannot split {len(names)} tensors into {num_shards} shards")
    # Greedy contiguous split: shard i ends once the running size passes (i+1)/n of the total,
    # keeping at least one tensor for every remaining shard.
    groups, cur, acc = [], [], 0
    for j, (name, sz) in enumerate(zip(names, sizes)):
        cur.append(name)
        acc += sz
        remaining_tensors = len(names) - j - 1
        remaining_shards = num_shards - len(groups) - 1
        if remaining_shards > 0 and (acc * num_shards >= total * (len(groups) + 1)
                                     or remaining_tensors == remaining_shards):
            groups.append(cur)
            cur = []
    groups.append(cur)
    assert len(groups) == num_shards and all(groups)
    files, weight_map = [], {}
    for i, g in enumerate(groups):
        fn = shard_name(i, num_shards)
        save_file({n: tensors[n] for n in g}, os.path.join(directory, fn),
                  dtypes={n: dtypes[n] for n in g if n in dtypes})
        files.append(fn)
        for n in g:
            weight_map[n] = fn
    index = {"metadata": {"total_size": total},
             "weight_map": {k: weight_map[k] for k in sorted(weight_map)}}
    with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    files.append("model.safetensors.index.json")
    return files


def load_checkpoint(directory):
    """{name: float64 array} from model.safetensors or an index + shards (BF16 widened exactly)."""
    idx = os.path.join(directory, "model.safetensors.index.json")
    files = []
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        t, _ = load_file(os.path.join(directory, fn))
        for k, v in t.items():
            out[k] = v.astype(np.float64)
    return out


if __name__ == "__main__":  # round-trip self-test
    import tempfile
    a = np.array([1.0, -2.5, 3.00390625, np.inf, -np.inf, np.nan, 1e-45, 65504.0,
                  1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 3.4028235e38], dtype=np.float32)
    bits = f32_to_bf16_bits(a)
    back = bf16_bits_to_f32(bits)
    print("bf16 RNE:", [hex(int(x)) for x in bits])
    print("back:", back)
    assert back[0] == 1.0 and back[8] == 1.0 and back[9] == 1.0 + 4 * 2 ** -8  # ties to even
    assert np.isnan(back[5]) and np.isinf(back[10])
    with tempfile.TemporaryDirectory() as d:
        t = {"a": np.arange(6, dtype=np.float64).reshape(2, 3), "b": np.arange(3, dtype=np.int64),
             "c": bits, "d": np.ones((1,), np.float32), "e": np.arange(4, dtype=np.int32)}
        save_file(t, os.path.join(d, "x.safetensors"), dtypes={"c": "BF16"})
        r, meta = load_file(os.path.join(d, "x.safetensors"), bf16_as_f32=False)
        assert meta == {"format": "pt"}
        for k in t:
            assert np.array_equal(r[k], t[k], equal_nan=True) or k == "c", k
        assert np.array_equal(r["c"], bits)
        save_sharded({f"w{i}": np.full((i + 1,), i, np.float32) for i in range(7)}, d, 3)
        print(sorted(os.listdir(d)))
        print(open(os.path.join(d, "model.safetensors.index.json")).read())
    print("ok")
