#!/usr/bin/env python3
"""Writes the fuzz seed corpora under fuzz/corpus/<target>/ (issue 12): small valid inputs for
each fuzz target, built from the test fixtures and configs or written here from the format
tables in the headers (shard.h, trace_file.h, safetensors.h), so the fuzzers start from inputs that
parse and mutate inward. Deterministic; rerun after a format change:

    python3 tools/make_fuzz_seeds.py
"""
import gzip
import json
import os
import shutil
import struct
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy(target, src, name=None):
    with open(os.path.join(ROOT, src), "rb") as f:
        put(target, name or os.path.basename(src), f.read())


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, off, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def shard(docs, passages, tokenizer="tokenizer.json", vocab=50304):
    meta = {"language": {"code": "eng", "name": "English", "script": "Latn",
                         "family": "Indo-European", "stage": "base", "related": ""},
            "split": "train", "tokenizer": tokenizer, "vocab_size": vocab}
    js = json.dumps(meta).encode()
    toff = (64 + len(js) + 63) // 64 * 64
    tokens = [t for d in docs for t in d]
    body = struct.pack(f"<{len(tokens)}I", *tokens)
    doff = (toff + len(body) + 7) // 8 * 8
    starts = [0]
    for d in docs:
        starts.append(starts[-1] + len(d))
    head = b"PMSHARD\0" + struct.pack("<IIQQQQQQ", 1, len(js), len(docs), len(tokens),
                                      0x1234, toff, doff, 0)
    out = head + js
    out += b"\0" * (toff - len(out)) + body
    out += b"\0" * (doff - len(out))
    out += struct.pack(f"<{len(starts)}Q", *starts) + struct.pack(f"<{len(passages)}q", *passages)
    return out


def pad8(b):
    return b + b"\0" * ((8 - len(b) % 8) % 8)


def trace(E, K, layers, n_chunks, n, logits):
    R = len(layers)
    langs = [{"code": "eng", "name": "English", "script": "Latn", "family": "IE",
              "stage": "base", "related": ""},
             {"code": "spa", "name": "Spanish", "script": "Latn", "family": "IE",
              "stage": "1", "related": ""}]
    js = json.dumps({"layers": layers, "languages": langs, "model": "m", "label": "l",
                     "data": "d"}).encode()
    out = b"PMTRACE\0" + struct.pack("<IIIIII", 1, len(js), E, K, R, 1 if logits else 0)
    out += b"\0" * 32 + js + b"\0" * ((64 - len(js) % 64) % 64)
    for c in range(n_chunks):
        body = pad8(struct.pack(f"<{n}H", *[i % 2 for i in range(n)]))
        body += pad8(struct.pack(f"<{n}I", *[c for _ in range(n)]))
        body += pad8(struct.pack(f"<{n}i", *[-1 if i % 3 else i for i in range(n)]))
        body += pad8(struct.pack(f"<{n}I", *range(n)))
        body += pad8(struct.pack(f"<{n}I", *[100 + i for i in range(n)]))
        body += pad8(struct.pack(f"<{R * n * K}H", *[(i * 7) % E for i in range(R * n * K)]))
        body += pad8(struct.pack(f"<{R * n * K}f", *[1.0 / K] * (R * n * K)))
        if logits:
            body += pad8(struct.pack(f"<{R * n * E}f", *[0.1 * i for i in range(R * n * E)]))
        out += b"CHNK" + struct.pack("<IQ", n, 16 + len(body)) + body
    return out


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3", "--no-check"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)

    # safetensors: small files of each dtype, metadata, an empty tensor, a 0-d tensor.
    f32 = struct.pack("<6f", *range(6))
    put("safetensors", "f32_meta.safetensors",
        safetensors([("a", "F32", [2, 3], f32)], {"format": "pt"}))
    put("safetensors", "mixed.safetensors",
        safetensors([("w", "BF16", [4], b"\x80\x3f" * 4), ("i", "I64", [2], struct.pack("<2q", 1, -1)),
                     ("e", "F32", [0, 5], b""), ("s", "F64", [], struct.pack("<d", 2.5)),
                     ("u", "U8", [3], b"abc"), ("h", "F16", [1], b"\x00\x3c"),
                     ("j", "I32", [1], struct.pack("<i", 7))]))

    # HF config.json: the fixtures' configs.
    for name in ["micro", "micro_gqa", "micro_tied", "micro_clip", "tiny"]:
        copy("hf_config", f"tests/fixtures/{name}/config.json", f"{name}.json")

    # model.safetensors.index.json naming the target's two scratch shards.
    put("hf_index", "two_shards.json",
        json.dumps({"metadata": {"total_size": 20},
                    "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}, indent=2))
    put("hf_index", "one_shard.json", json.dumps({"weight_map": {"x": "a.safetensors"}}))

    # tokenizer: mode byte 0 = tokenizer.json (a cut-down OLMo file), 1 = text to encode,
    # 2 = ids to decode.
    with open(os.path.join(ROOT, "data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json")) as f:
        tok = json.load(f)
    keep = 300
    vocab = {k: v for k, v in tok["model"]["vocab"].items() if v < keep}
    merges = []
    for m in tok["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    small = dict(tok)
    small["model"] = dict(tok["model"], vocab=vocab, merges=merges)
    small["added_tokens"] = [dict(t, id=keep + i) for i, t in enumerate(tok["added_tokens"][:3])]
    put("tokenizer", "small_tokenizer.json", b"\0" + json.dumps(small).encode())
    texts = []
    with open(os.path.join(ROOT, "tests/fixtures/tokenizer/cases.jsonl")) as f:
        for line in f:
            texts.append(json.loads(line).get("text", ""))
    for i, t in enumerate(texts[:12]):
        put("tokenizer", f"text_{i:02d}.bin", b"\1" + t.encode()[:512])
    put("tokenizer", "ids.bin", b"\2" + struct.pack("<8i", 0, 1, 50, 255, 256, 50279, 50280, 100))

    # corpus readers: mode byte = kind (0 .txt, 1 .jsonl, 2/3 .gz, 4/5 .zst) + 6 * (split file)
    # + 12 * (passage field).
    txt = "First block\nline two\r\n\r\nSecond block\rend\n\n\n  \nthird \xe2\x82\xac"
    txt_b = txt.encode("latin-1")
    jsonl = (b'{"text": "hello\\r\\nworld", "passage": 3}\n\n{"text": "x\\u0000y", "passage": -1}\n'
             b'{"text": "", "passage": 0}\r\n')
    put("reader", "txt_blocks.bin", bytes([0]) + txt_b)
    put("reader", "txt_file.bin", bytes([6]) + txt_b)
    put("reader", "jsonl_passage.bin", bytes([13]) + jsonl)
    put("reader", "txt_gz.bin", bytes([2]) + gzip.compress(txt_b, mtime=0))
    put("reader", "jsonl_gz.bin", bytes([15]) + gzip.compress(jsonl, mtime=0))
    put("reader", "txt_zst.bin", bytes([4]) + zstd(txt_b))
    put("reader", "jsonl_zst.bin", bytes([17]) + zstd(jsonl))

    # token shards.
    put("shard", "three_docs.pmshard", shard([[1, 2, 3], [], [4, 5]], [0, -1, 7]))
    put("shard", "empty.pmshard", shard([], []))

    # routing traces.
    put("trace", "logits.pmtrace", trace(4, 2, [0, 1], 2, 3, True))
    put("trace", "plain.pmtrace", trace(8, 1, [3], 1, 5, False))

    # manifests: flat paths only (the target skips inputs with '/' or '\').
    put("manifest", "blocks.yaml", """version: 1
heldout:
  passages: [1, 2, 3]
prepare:
  dedup: true
languages:
  eng:
    name: English
    script: Latn
    family: Indo-European/Germanic
    stage: base
    sources:
      - path: a.txt
        split: blocks
      - {path: "*.jsonl", text_field: text, passage_field: passage}
  spa:
    name: Spanish
    script: Latn
    family: Romance
    stage: "1"
    related: eng
    sources:
      - {path: "b.jsonl"}
""".replace("Indo-European/Germanic", "Germanic"))
    put("manifest", "fraction.yaml", """heldout: {fraction: 0.25}
languages:
  eng: {name: English, script: Latn, family: Germanic, stage: base, sources: [{path: a.txt, split: file}]}
""")
    for name in ["base", "stage1", "stage2"]:
        copy("stage_config", f"configs/stages/{name}.yaml")

    # .npy and .npz: the fixtures.
    for src in ["tests/fixtures/micro/tokens.npy", "tests/fixtures/analysis/weight.npy",
                "tests/fixtures/analysis/lang.npy", "tests/fixtures/analysis/passage.npy"]:
        copy("npy", src, src.split("/")[-2] + "_" + os.path.basename(src))
    for name in ["counts_basic", "bad_truncated", "bad_object_array", "bad_overflow_shape",
                 "bad_huge_shape", "bad_lang_strings"]:
        copy("npz", f"tests/fixtures/npz/{name}.npz")


if __name__ == "__main__":
    main()
