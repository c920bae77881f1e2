// Reference throughput for bench/bench_tokenizer.cpp: Hugging Face tokenizers (npm `tokenizers`,
// Rust via Node) on the same documents (UDHR texts of tests/fixtures/tokenizer/cases.jsonl,
// (a) English, (b) the mostly non-ASCII declarations, repeated to >= 4 MB). Reports MB/s of
// encodeBatch (Rust's thread pool: all cores, or RAYON_NUM_THREADS) and of sequential encode().
// Usage: NODE_PATH=/tmp/tokref/node_modules node tools/bench_tokenizer_reference.js \
//            data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json tests/fixtures/tokenizer/cases.jsonl
'use strict';
const fs = require('fs');
const {Tokenizer} = require('tokenizers');

const [tokPath, casesPath] = process.argv.slice(2);
const tok = Tokenizer.fromFile(tokPath);
const cases = fs.readFileSync(casesPath, 'utf8').split('\n').filter((l) => l).map(JSON.parse);

function corpus(which) {
    const base = [];
    for (const {name, text} of cases) {
        if (!name.startsWith('udhr_')) continue;
        const bytes = Buffer.from(text, 'utf8');
        let nonAscii = 0;
        for (const b of bytes) nonAscii += b >= 0x80 ? 1 : 0;
        if (which === 'english' ? name === 'udhr_eng' : nonAscii * 2 > bytes.length) base.push(text);
    }
    const docs = [];
    let n = 0;
    while (n < 4 << 20)
        for (const t of base) {
            docs.push(t);
            n += Buffer.byteLength(t, 'utf8');
        }
    return {docs, bytes: n};
}

async function time(fn, reps) {
    await fn();  // warm-up (fills the BPE cache, as the C++ benchmark's first iteration does)
    const ts = [];
    for (let r = 0; r < reps; ++r) {
        const t0 = process.hrtime.bigint();
        await fn();
        ts.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    ts.sort((a, b) => a - b);
    return ts[Math.floor(ts.length / 2)];
}

(async () => {
    for (const which of ['english', 'nonlatin']) {
        const {docs, bytes} = corpus(which);
        const batch = await time(() => tok.encodeBatch(docs), 5);
        const seq = await time(async () => {
            for (const d of docs) await tok.encode(d);
        }, 3);
        console.log(JSON.stringify({
            impl: 'hf-tokenizers-node', corpus: which, mb: bytes / 1e6,
            encodeBatch_MBps: bytes / 1e6 / batch, encode_sequential_MBps: bytes / 1e6 / seq,
        }));
    }
})();
