#!/usr/bin/python3
"""numpy/scipy reference numbers for the routing analysis (src/analysis, docs/analysis.md).

    /usr/bin/python3 tools/analysis_reference.py --out tests/fixtures/analysis

Builds a small fixed synthetic routing trace (5 languages with tokens plus one absent, E = 8,
K = 2, 3 recorded layers, documents in shuffled order, a document split over two passage ids, a
second trace of the same tokens for drift), writes its columns as .npy files and `expected.json`
with every deterministic quantity, computed here independently of the C++ code (scipy's
`jensenshannon` and `entropy` where they apply, NMI as (H(L) + H(E) - H(L,E)) / H(L) rather
than the C++ direct sum). The C++ test (src/analysis/fixture_test.cpp) must agree to 1e-9.
Deterministic: two runs give identical bytes (also written: README.md, SHA256SUMS).
"""
import argparse
import hashlib
import json
import os

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

E, K = 8, 2
LAYERS = [0, 2, 5]
R = len(LAYERS)
SEED = 20240607
LANGS = [
    dict(code="spa", name="Spanish", script="Latn", family="Indo-European/Romance", stage="1",
         related=""),
    dict(code="glg", name="Galician", script="Latn", family="Indo-European/Romance", stage="2",
         related="spa"),
    dict(code="rus", name="Russian", script="Cyrl", family="Indo-European/Slavic", stage="1",
         related=""),
    dict(code="bel", name="Belarusian", script="Cyrl", family="Indo-European/Slavic", stage="2",
         related="rus"),
    dict(code="eus", name="Basque", script="Latn", family="Basque", stage="2", related="fra"),
    dict(code="fra", name="French", script="Latn", family="Indo-European/Romance", stage="1",
         related=""),  # in the header, no tokens: absent
]
PRESENT = [0, 1, 2, 3, 4]  # header indices of the languages with tokens, in header order
DOCS = {0: 4, 1: 4, 2: 4, 3: 4, 4: 3}
# Token id ranges: script-shared, language-specific, and punctuation shared by all.
SCRIPT_IDS = {"Latn": (0, 40), "Cyrl": (200, 240)}
OWN_IDS = {0: (50, 80), 1: (80, 110), 2: (250, 280), 3: (280, 310), 4: (110, 140)}
PUNCT = (400, 405)


def softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def build(rng):
    """Returns the trace columns (token order) and the second trace's routing."""
    base = rng.normal(size=(R, E)) * 1.2
    sep = np.array([0.3, 0.8, 1.5])[:, None]
    z = {a: rng.normal(size=(R, E)) for a in PRESENT}
    z[1] = z[0] + 0.3 * rng.normal(size=(R, E))  # glg close to spa
    z[3] = z[2] + 0.3 * rng.normal(size=(R, E))  # bel close to rus
    probs = {a: softmax(base + sep * z[a]) for a in PRESENT}
    shift = {a: softmax(base + sep * z[a] + 0.7 * rng.normal(size=(R, E))) for a in PRESENT}

    docs = [(a, i) for a in PRESENT for i in range(DOCS[a])]
    order = rng.permutation(len(docs))
    doc_ids = rng.permutation(len(docs))  # document ids are not the trace order
    cols = {k: [] for k in ("lang", "doc", "passage", "position", "token")}
    ex_a, w_a, ex_b, w_b = [], [], [], []
    for j in order:
        a, i = docs[j]
        n = int(rng.integers(5, 13))
        for pos in range(n):
            if i < 3:
                passage = 100 + i
            elif a == 0:
                passage = 110 if pos < n // 2 else -1  # one document, two units
            elif a == 1:
                passage = 110
            else:
                passage = -1
            u = rng.random()
            if u < 0.5:
                lo, hi = SCRIPT_IDS[LANGS[a]["script"]]
            elif u < 0.85:
                lo, hi = OWN_IDS[a]
            else:
                lo, hi = PUNCT
            cols["lang"].append(a)
            cols["doc"].append(int(doc_ids[j]))
            cols["passage"].append(passage)
            cols["position"].append(pos)
            cols["token"].append(int(rng.integers(lo, hi)))
            ea, wa, eb, wb = [], [], [], []
            for r in range(R):
                p = probs[a][r]
                e = rng.choice(E, size=K, replace=False, p=p)
                w = (p[e] * (0.8 + 0.4 * rng.random(K))).astype(np.float32)
                o = np.argsort(-w, kind="stable")
                ea.append(e[o])
                wa.append(w[o])
                if rng.random() < 0.35:  # the second checkpoint routes this token differently
                    q = shift[a][r]
                    e2 = rng.choice(E, size=K, replace=False, p=q)
                    w2 = (q[e2] * (0.8 + 0.4 * rng.random(K))).astype(np.float32)
                else:
                    e2, w2 = e[o], (w[o] * np.float32(0.9)).astype(np.float32)
                eb.append(e2)
                wb.append(w2)
            ex_a.append(ea)
            w_a.append(wa)
            ex_b.append(eb)
            w_b.append(wb)
    out = {k: np.array(v) for k, v in cols.items()}
    # [n, R, K] -> [R, n, K]
    out["expert"] = np.ascontiguousarray(np.array(ex_a, dtype=np.int32).transpose(1, 0, 2))
    out["weight"] = np.ascontiguousarray(np.array(w_a, dtype=np.float32).transpose(1, 0, 2))
    out["expert_b"] = np.ascontiguousarray(np.array(ex_b, dtype=np.int32).transpose(1, 0, 2))
    out["weight_b"] = np.ascontiguousarray(np.array(w_b, dtype=np.float32).transpose(1, 0, 2))
    out["num_documents"] = len(docs)
    return out


def sums(t, expert, weight):
    """Per present language: counts, weight, renorm sums [R, E] (float64) and token counts."""
    w = weight.astype(np.float64)
    wn = w / w.sum(axis=2, keepdims=True)
    res = {"counts": [], "weight": [], "renorm": [], "tokens": []}
    for a in PRESENT:
        m = t["lang"] == a
        res["tokens"].append(int(m.sum()))
        for name, val in (("counts", np.ones_like(w)), ("weight", w), ("renorm", wn)):
            s = np.zeros((R, E))
            for r in range(R):
                np.add.at(s[r], expert[r][m].ravel(), val[r][m].ravel())
            res[name].append(s)
    return res


def norm(x):
    return x / x.sum(axis=-1, keepdims=True)


def jsd_bits(p, q):
    return float(jensenshannon(p, q, base=2) ** 2)


def jsd_nats(p, q):
    return float(jensenshannon(p, q) ** 2)


def nmi(joint):
    """(H(L) + H(E) - H(L,E)) / H(L), bits, from a [nL, E] mass table."""
    P = joint / joint.sum()
    hl = entropy(P.sum(axis=1), base=2)
    he = entropy(P.sum(axis=0), base=2)
    hle = entropy(P.ravel(), base=2)
    return float((hl + he - hle) / hl)


def top_m(p, m):
    return np.argsort(-p, kind="stable")[:m]


def expected(t):
    nL = len(PRESENT)
    S = sums(t, t["expert"], t["weight"])
    dist = {k: [norm(S[k][a]) for a in range(nL)] for k in ("counts", "weight", "renorm")}
    res = {"num_experts": E, "top_k": K, "layers": LAYERS, "languages": LANGS,
           "num_documents": int(t["num_documents"]), "tokens": int(len(t["lang"])),
           "lang_tokens": S["tokens"]}
    res["distributions"] = {k: [d.tolist() for d in v] for k, v in dist.items()}
    res["entropy_bits"] = {k: [[float(entropy(v[a][r], base=2)) for r in range(R)]
                               for a in range(nL)] for k, v in dist.items()}
    jb, jn, jz = {}, {}, {}
    for k, v in dist.items():
        jb[k] = [[[jsd_bits(v[a][r], v[b][r]) for b in range(nL)] for a in range(nL)]
                 for r in range(R)]
        jn[k] = [[[jsd_nats(v[a][r], v[b][r]) for b in range(nL)] for a in range(nL)]
                 for r in range(R)]
        jz[k] = [[[jb[k][r][a][b] / (np.log2(E) - 0.5 * (entropy(v[a][r], base=2) +
                                                          entropy(v[b][r], base=2)))
                   for b in range(nL)] for a in range(nL)] for r in range(R)]
    res["jsd_bits"], res["jsd_nats"], res["jsd_normalized"] = jb, jn, jz

    # NMI over the counts estimator: data-weighted and language-balanced; trend over layers.
    counts = np.array(S["counts"])  # [nL, R, E]
    pc = np.array(dist["counts"])
    res["nmi"] = [nmi(counts[:, r, :]) for r in range(R)]
    res["nmi_balanced"] = [nmi(pc[:, r, :] / nL) for r in range(R)]
    res["nmi_slope"] = float(np.polyfit(LAYERS, res["nmi"], 1)[0])
    res["nmi_last_minus_first"] = res["nmi"][-1] - res["nmi"][0]
    res["nmi_balanced_slope"] = float(np.polyfit(LAYERS, res["nmi_balanced"], 1)[0])

    # Paired JSD (counts): per passage present in both languages.
    lang, passage = t["lang"], t["passage"]
    pairs = []
    for a in range(nL):
        for b in range(a + 1, nL):
            pa_ = set(passage[(lang == PRESENT[a]) & (passage >= 0)])
            pb_ = set(passage[(lang == PRESENT[b]) & (passage >= 0)])
            shared = sorted(pa_ & pb_)
            if not shared:
                continue
            per, pool_a, pool_b = [], np.zeros((R, E)), np.zeros((R, E))
            for ps in shared:
                ca, cb = np.zeros((R, E)), np.zeros((R, E))
                for r in range(R):
                    np.add.at(ca[r], t["expert"][r][(lang == PRESENT[a]) & (passage == ps)].ravel(), 1)
                    np.add.at(cb[r], t["expert"][r][(lang == PRESENT[b]) & (passage == ps)].ravel(), 1)
                per.append([jsd_bits(norm(ca[r]), norm(cb[r])) for r in range(R)])
                pool_a += ca
                pool_b += cb
            pairs.append({"a": LANGS[PRESENT[a]]["code"], "b": LANGS[PRESENT[b]]["code"],
                          "passages": len(shared),
                          "mean": np.mean(np.array(per), axis=0).tolist(),
                          "aggregate": [jsd_bits(norm(pool_a[r]), norm(pool_b[r]))
                                        for r in range(R)]})
    res["paired"] = pairs

    # Expert reuse (counts, m = K): high-resource = related of someone or stage "1".
    codes = [LANGS[h]["code"] for h in PRESENT]
    high = [i for i, h in enumerate(PRESENT)
            if LANGS[h]["stage"] == "1" or any(LANGS[x]["related"] == LANGS[h]["code"] for x in PRESENT)]
    reuse = []
    for i, h in enumerate(PRESENT):
        rel = LANGS[h]["related"]
        if not rel or rel not in codes:
            continue
        b = codes.index(rel)
        targets = [i, b] + [c for c in high if c not in (i, b)]
        shares = [[float(pc[i][r][top_m(pc[tg][r], K)].sum()) for r in range(R)] for tg in targets]
        margin = [shares[1][r] - np.mean([s[r] for s in shares[2:]]) for r in range(R)]
        reuse.append({"language": codes[i], "targets": [codes[x] for x in targets],
                      "shares": shares, "margin": [float(x) for x in margin]})
    res["reuse"] = reuse

    # Language-specific and shared experts (counts; threshold 0.5, ratio 2, factor 0.5).
    tokens = np.array(S["tokens"], dtype=np.float64)
    spec = []
    for r in range(R):
        per_tok = counts[:, r, :] / tokens[:, None]  # [nL, E]
        share = per_tok / per_tok.sum(axis=0, keepdims=True)
        for e in range(E):
            o = np.argsort(-share[:, e], kind="stable")
            top, nxt = share[o[0], e], share[o[1], e]
            if top >= 0.5 and top >= 2 * nxt:
                spec.append({"layer": LAYERS[r], "expert": e, "language": codes[o[0]],
                             "share": float(top)})
    res["specific"] = spec
    res["shared"] = [{"layer": LAYERS[r], "expert": e} for r in range(R) for e in range(E)
                     if pc[:, r, e].min() >= 0.5 / E]

    # Co-activation (K = 2: each token is one pair): frequency and lift.
    co_f, co_l = [], []
    for i, h in enumerate(PRESENT):
        m = lang == h
        N = int(m.sum())
        fr, li = [], []
        for r in range(R):
            C = np.zeros((E, E))
            for e1, e2 in t["expert"][r][m]:
                C[e1, e2] += 1
                C[e2, e1] += 1
            c = counts[i, r]
            fr.append((C / (N * K * (K - 1) / 2)).tolist())
            with np.errstate(divide="ignore", invalid="ignore"):
                L = C * N / np.outer(c, c)
            L[~np.isfinite(L)] = np.nan
            np.fill_diagonal(L, np.nan)
            li.append([[None if np.isnan(x) else float(x) for x in row] for row in L])
        co_f.append(fr)
        co_l.append(li)
    res["coactivation_frequency"] = co_f
    res["coactivation_lift"] = co_l

    # Vocabulary overlap, restricted JSD (counts), correlations across pairs.
    V = [set(t["token"][lang == h].tolist()) for h in PRESENT]
    O = np.array([[len(V[a] & V[b]) / len(V[a]) for b in range(nL)] for a in range(nL)])
    res["vocab_overlap"] = O.tolist()
    res["shared_token_ids"] = [[len(V[a] & V[b]) for b in range(nL)] for a in range(nL)]
    restricted = []
    for r in range(R):
        M = np.full((nL, nL), np.nan)
        for a in range(nL):
            for b in range(nL):
                ma = (lang == PRESENT[a]) & np.isin(t["token"], list(V[b]))
                mb = (lang == PRESENT[b]) & np.isin(t["token"], list(V[a]))
                ca, cb = np.zeros(E), np.zeros(E)
                np.add.at(ca, t["expert"][r][ma].ravel(), 1)
                np.add.at(cb, t["expert"][r][mb].ravel(), 1)
                if ca.sum() > 0 and cb.sum() > 0:
                    M[a, b] = jsd_bits(norm(ca), norm(cb))
        restricted.append([[None if np.isnan(x) else float(x) for x in row] for row in M])
    res["restricted_bits"] = restricted
    iu = np.triu_indices(nL, 1)
    ov = 0.5 * (O + O.T)[iu]
    jc = np.array(jb["counts"])  # [R, nL, nL]
    res["correlation_jsd"] = [float(np.corrcoef(jc[r][iu], ov)[0, 1]) for r in range(R)]
    res["correlation_mean_jsd"] = float(np.corrcoef(jc.mean(axis=0)[iu], ov)[0, 1])

    # Top token ids per (layer, expert): by slots, ties by id; share of the id's occurrences.
    top = []
    for r in range(R):
        row = []
        for e in range(E):
            hit = (t["expert"][r] == e).any(axis=1)
            ids, cnt = np.unique(t["token"][hit], return_counts=True)
            o = np.lexsort((ids, -cnt))[:10]
            occ = {i: int((t["token"] == i).sum()) for i in ids[o]}
            row.append([[int(ids[j]), int(cnt[j]), int(cnt[j]) / occ[ids[j]]] for j in o])
        top.append(row)
    res["top_tokens"] = top

    # Drift against the second trace: top-k overlap and JSD of the counts distributions.
    SB = sums(t, t["expert_b"], t["weight_b"])
    ov_d, js_d = [], []
    for i, h in enumerate(PRESENT):
        m = lang == h
        ov_r, js_r = [], []
        for r in range(R):
            A, B = t["expert"][r][m], t["expert_b"][r][m]
            same = [len(set(x) & set(y)) / K for x, y in zip(A.tolist(), B.tolist())]
            ov_r.append(float(np.mean(same)))
            js_r.append(jsd_bits(norm(S["counts"][i][r]), norm(SB["counts"][i][r])))
        ov_d.append(ov_r)
        js_d.append(js_r)
    res["drift_overlap"] = ov_d
    res["drift_jsd_bits"] = js_d
    return res


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


README = """# Routing-analysis fixture (src/analysis/fixture_test.cpp)

Generated by `tools/analysis_reference.py` with Debian's Python (numpy, scipy 1.10):

    /usr/bin/python3 tools/analysis_reference.py --out tests/fixtures/analysis

Deterministic (identical bytes on every run); verify with `sha256sum -c SHA256SUMS` here.

A synthetic trace of {tokens} tokens: languages spa, glg (related spa), rus, bel (related rus),
eus (related fra) with tokens, and fra in the language table without tokens; E = 8, K = 2, recorded
layers 0, 2, 5; {docs} documents in shuffled order with shuffled ids; passages 100-102 in every
language, 110 in spa (half of one document: two units) and glg.

| file | dtype, shape | column |
|---|---|---|
| lang.npy | int64 [n] | index into expected.json `languages` |
| doc.npy | int64 [n] | document id |
| passage.npy | int64 [n] | parallel-passage id, -1 none |
| position.npy | int64 [n] | position in the document |
| token.npy | int64 [n] | token id |
| expert.npy, expert_b.npy | int32 [R, n, K] | top-k expert ids (rank order), trace A and B |
| weight.npy, weight_b.npy | float32 [R, n, K] | routing weights, trace A and B |

`expected.json`: every deterministic quantity of docs/analysis.md computed with numpy/scipy
(distributions, entropies and JSD matrices in bits and nats for the three estimators, normalised
JSD, paired JSD, NMI and its trend, specific/shared experts, reuse shares, co-activation, vocabulary
overlap, restricted JSD and correlations, top tokens, drift overlap and JSD against trace B).
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(SEED))
    t = build(rng)
    files = []
    for name in ("lang", "doc", "passage", "position", "token"):
        np.save(os.path.join(args.out, name + ".npy"), t[name].astype(np.int64))
        files.append(name + ".npy")
    for name in ("expert", "weight", "expert_b", "weight_b"):
        np.save(os.path.join(args.out, name + ".npy"), t[name])
        files.append(name + ".npy")
    exp = expected(t)
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
        f.write("\n")
    files.append("expected.json")
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(README.format(tokens=len(t["lang"]), docs=t["num_documents"]))
    files.append("README.md")
    with open(os.path.join(args.out, "SHA256SUMS"), "w") as f:
        for fn in sorted(files):
            f.write(f"{sha256(os.path.join(args.out, fn))}  {fn}\n")
    print(f"wrote {len(files)} files to {args.out}: {len(t['lang'])} tokens, "
          f"{t['num_documents']} documents")


if __name__ == "__main__":
    main()
