#!/usr/bin/env node
// Builds the English `base` corpus of data/corpus/english/ from licence texts that Debian ships in
// /usr/share/common-licenses/ (package base-files) and whose own terms allow redistributing them:
// the GNU licences ("Everyone is permitted to copy and distribute verbatim copies of this license
// document") and CC0 1.0 (Creative Commons dedicates the text of its legal tools to the public
// domain under CC0). Apache-2.0, Artistic, BSD, MPL-1.1 and MPL-2.0 are left out: their files
// carry no statement about copying the licence text itself.
//
// Each input becomes <out>/<name>.txt with one document per blank-line-separated block (a
// paragraph): line endings are normalised to "\n", the hard-wrapped lines of a paragraph are
// re-flowed into one line (whitespace runs, form feeds included, collapse to one space; lines
// are trimmed), and paragraphs are separated by exactly one blank line. The words are unchanged.
// Output is byte-for-byte deterministic.
//
// Usage (Node 20+, no dependencies):
//   node tools/extract_english.mjs --out data/corpus/english [--src /usr/share/common-licenses]
//       [--table]   # also print a markdown table (documents, bytes, characters)
// The SHA-256 of every input is checked against the one the committed corpus was built from
// (base-files 12.4+deb12u11, Debian 12); a mismatch is a warning, since another base-files
// version may ship a re-wrapped copy of the same licence.

import crypto from 'node:crypto';
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// name -> [licence of the text itself, SHA-256 of the input in base-files 12.4+deb12u11]
const SOURCES = [
  ['GPL-1', 'verbatim copying permitted (FSF notice in the text)',
    'd77d235e41d54594865151f4751e835c5a82322b0e87ace266567c3391a4b912'],
  ['GPL-2', 'verbatim copying permitted (FSF notice in the text)',
    '8177f97513213526df2cf6184d8ff986c675afb514d4e68a404010521b880643'],
  ['GPL-3', 'verbatim copying permitted (FSF notice in the text)',
    '3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986'],
  ['LGPL-2', 'verbatim copying permitted (FSF notice in the text)',
    '681e386e44a19d7d0674b4320272c90e66b6610b741e7e6305f8219c42e85366'],
  ['LGPL-2.1', 'verbatim copying permitted (FSF notice in the text)',
    'dc626520dcd53a22f727af3ee42c770e56c97a64fe3adb063799d8ab032fe551'],
  ['LGPL-3', 'verbatim copying permitted (FSF notice in the text)',
    'e3a994d82e644b03a792a930f574002658412f62407f5fee083f2555c5f23118'],
  ['GFDL-1.2', 'verbatim copying permitted (FSF notice in the text)',
    'd8e94ae5fdb5433fcae2961aeb1a8cf17174d6f4a0465d24bf37dd8a038bd439'],
  ['GFDL-1.3', 'verbatim copying permitted (FSF notice in the text)',
    '110535522396708cea37c72a802c5e7e81391139f5f7985631c93ef242b206a4'],
  ['CC0-1.0', 'CC0 1.0 (Creative Commons dedicates its legal code to the public domain)',
    'a2010f343487d3f7618affe54f789f5487602331c0a8d03f49e9a7c547cf0499'],
];

function usage(msg) {
  if (msg) process.stderr.write(`extract_english: ${msg}\n`);
  process.stderr.write(
    'usage: node tools/extract_english.mjs --out DIR [--src DIR] [--table]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {src: '/usr/share/common-licenses', out: null, table: false};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--src') o.src = value();
    else if (a === '--out') o.out = value();
    else if (a === '--table') o.table = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!o.out) usage('--out is required');
  return o;
}

// Paragraphs of `text`: blocks separated by lines that are empty or whitespace only.
function paragraphs(text) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const out = [];
  let cur = [];
  const end = () => {
    if (cur.length) out.push(cur.join(' ').replace(/\s+/gu, ' ').trim().normalize('NFC'));
    cur = [];
  };
  for (const line of lines) {
    if (/^\s*$/u.test(line)) end();
    else cur.push(line.trim());
  }
  end();
  return out.filter((p) => p.length > 0);
}

// "package: version" of the Debian package owning `file`, or null off Debian.
function debianPackage(file) {
  try {
    const owner = execFileSync('dpkg', ['-S', file], {encoding: 'utf8'}).split(':')[0].trim();
    const version = execFileSync('dpkg-query', ['-W', '-f=${Version}', owner],
      {encoding: 'utf8'}).trim();
    return `${owner} ${version}`;
  } catch {
    return null;
  }
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  fs.mkdirSync(o.out, {recursive: true});
  const rows = [];
  for (const [name, licence, sha] of SOURCES) {
    const file = path.join(o.src, name);
    const raw = fs.readFileSync(file);
    const digest = crypto.createHash('sha256').update(raw).digest('hex');
    if (digest !== sha)
      process.stderr.write(`extract_english: warning: ${file} has SHA-256 ${digest}, ` +
        `expected ${sha}; the output may differ from the committed corpus\n`);
    const docs = paragraphs(new TextDecoder('utf-8', {fatal: true}).decode(raw));
    const out = docs.join('\n\n') + '\n';
    fs.writeFileSync(path.join(o.out, `${name}.txt`), out, 'utf8');
    const row = {
      name, licence, pkg: debianPackage(file) ?? 'unknown', documents: docs.length,
      bytes: Buffer.byteLength(out, 'utf8'), chars: docs.reduce((s, d) => s + [...d].length, 0),
    };
    rows.push(row);
    process.stderr.write(`${name.padEnd(9)} ${String(row.documents).padStart(4)} documents ` +
      `${String(row.bytes).padStart(6)} bytes  from ${row.pkg}  (${licence})\n`);
  }
  if (o.table) {
    const lines = [
      '| file | Debian package | documents | bytes | characters | licence of the text |',
      '| - | - | -: | -: | -: | - |',
    ];
    for (const r of rows)
      lines.push(`| ${r.name}.txt | ${r.pkg} | ${r.documents} | ${r.bytes} | ${r.chars} | ` +
        `${r.licence} |`);
    process.stdout.write(lines.join('\n') + '\n');
  }
}

main();
