#!/usr/bin/env bash
# Regenerates tests/fixtures/report/{analysis,eval,interventions}.json, the fixed inputs of the
# report snapshot test, from the models of a full demo run (polymoe demo --out DEMO_DIR):
# five languages (spa, glg, rus, bel, eng), layers 0, 7 and 15, small bootstrap counts. Sections
# the report does not read (vocabulary, co-activation, paired JSD, drift distributions) are
# dropped to keep the fixture small; what remains is the analysis output unchanged.
#
#   tools/make_report_fixtures.sh build/release/polymoe out/demo
#   POLYMOE_UPDATE_SNAPSHOTS=1 build/release/src/report/report_test   # then review the diff
set -euo pipefail
P=${1:?usage: make_report_fixtures.sh POLYMOE_BINARY DEMO_DIR}
DEMO=${2:?usage: make_report_fixtures.sh POLYMOE_BINARY DEMO_DIR}
OUT=$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/report
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LANGS=spa,glg,rus,bel,eng
for m in base stage1 stage2; do
    "$P" trace --model "$DEMO/models/$m/final" --data "$DEMO/prepared" --languages $LANGS \
        --layers 0,7,15 --label $m --seq 128 --threads 2 --out "$TMP/$m.trace"
done
"$P" eval --model "$DEMO/models/base/final" --model "$DEMO/models/stage1/final" \
    --model "$DEMO/models/stage2/final" --labels base,stage1,stage2 --data "$DEMO/prepared" \
    --languages $LANGS --seq 128 --bootstrap 200 --out "$TMP/eval.json"
"$P" analyze --trace "$TMP/base.trace" --trace "$TMP/stage1.trace" --trace "$TMP/stage2.trace" \
    --eval "$TMP/eval.json" --bootstrap 50 --permutations 50 --out "$TMP/analysis.json"
"$P" ablate --model "$DEMO/models/stage2/final" --data "$DEMO/prepared" \
    --analysis "$TMP/analysis.json" --experts top --top-m 2 --seq 128 --max-tokens 256 \
    --bootstrap 100 --layers 0:15 --sweep --out "$TMP/interventions.json"
/usr/bin/python3 - "$TMP" "$OUT" <<'PY'
import json, sys
tmp, out = sys.argv[1], sys.argv[2]
a = json.load(open(f"{tmp}/analysis.json"))
for t in a["traces"]:
    for k in ("vocabulary", "coactivation", "paired_jsd"):
        t.pop(k, None)
for d in a["drift"]:
    for lang in d["languages"]:
        for layer in lang["layers"]:
            for k in ("p_from", "p_to", "change"):
                layer.pop(k, None)
for name, doc in (("analysis", a), ("eval", json.load(open(f"{tmp}/eval.json"))),
                  ("interventions", json.load(open(f"{tmp}/interventions.json")))):
    with open(f"{out}/{name}.json", "w") as f:
        json.dump(doc, f, indent=None, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
PY
ls -l "$OUT"
