#!/usr/bin/env node
// Encodes text with the Rust HF tokenizers library (npm `tokenizers`).
//
//   node scripts/tokgolden/encode.js TOKENIZER_JSON < lines.jsonl > ids.jsonl
//
// Input: one JSON string per line (already cleaned by the Go side, see
// regen.sh). Output: one JSON array of ids per line, no special tokens.
// An empty string encodes to [].
'use strict';

const fs = require('fs');
const readline = require('readline');
const { Tokenizer } = require('tokenizers');

async function main() {
  const path = process.argv[2];
  if (!path) {
    console.error('usage: encode.js TOKENIZER_JSON < lines.jsonl > ids.jsonl');
    process.exit(2);
  }
  const tok = Tokenizer.fromFile(path);
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const out = [];
  let n = 0;
  for await (const line of rl) {
    n++;
    let text;
    try {
      text = JSON.parse(line);
    } catch (e) {
      throw new Error(`line ${n}: ${e.message}`);
    }
    if (typeof text !== 'string') throw new Error(`line ${n}: not a JSON string`);
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    out.push(JSON.stringify(enc.getIds()));
  }
  fs.writeSync(1, out.join('\n') + (out.length ? '\n' : ''));
}

main().catch((e) => {
  console.error('encode.js:', e.message);
  process.exit(1);
});
