#!/usr/bin/env node
// Node peers for scripts/bench: the Rust HF tokenizers (npm `tokenizers`)
// and onnxruntime-node, both single-threaded, on the files the Go driver
// writes. Prints one JSON object with the seconds of every repetition.
//
//   node scripts/bench/peers.js --model M --tokenizer T --clean clean.jsonl \
//        --ids ids.jsonl --reps 5 --batch 32 --window 512
//
// clean.jsonl: one JSON string per line (text already cleaned by the Go
// side, as scripts/tokgolden does). ids.jsonl: the Go tokenizer's ids for the
// same lines, one JSON array per line; HF's ids must equal them exactly.
// Batching mirrors callwatch.Detector.ScoreIDs: rows sorted by length
// (stable), batches of --batch, windows of --window tokens with the LSTM
// state carried across windows, rows that have ended drop out.
'use strict';

process.env.RAYON_NUM_THREADS = process.env.RAYON_NUM_THREADS || '1';
process.env.TOKENIZERS_PARALLELISM = 'false';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { Tokenizer } = require('tokenizers');

function args() {
  const a = { reps: 5, batch: 32, window: 512 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  for (const k of ['model', 'tokenizer', 'clean', 'ids']) {
    if (!a[k]) throw new Error(`missing --${k}`);
  }
  a.reps = +a.reps; a.batch = +a.batch; a.window = +a.window;
  return a;
}

function readLines(p) {
  return fs.readFileSync(p, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

async function encodeAll(tok, texts) {
  const out = new Array(texts.length);
  for (let i = 0; i < texts.length; i++) {
    const enc = await tok.encode(texts[i], null, { addSpecialTokens: false });
    out[i] = enc.getIds();
  }
  return out;
}

// scoreAll returns P(phishing) per row, batching like Detector.ScoreIDs.
// P > 0: a v2 model whose pooled state p0 -> pn is carried beside h and c.
async function scoreAll(sess, rows, batch, window, L, H, P) {
  const order = rows.map((_, i) => i).sort((x, y) => rows[x].length - rows[y].length || x - y);
  const scores = new Float32Array(rows.length);
  for (let s = 0; s < order.length; s += batch) {
    const idx = order.slice(s, s + batch);
    const st = idx.map(() => ({ h: new Float32Array(L * H), c: new Float32Array(L * H), p: new Float32Array(P) }));
    for (let off = 0; ; off += window) {
      const active = [];
      let seq = 0;
      idx.forEach((r, j) => {
        if (rows[r].length > off) { active.push(j); seq = Math.max(seq, Math.min(rows[r].length - off, window)); }
      });
      if (active.length === 0) break;
      const B = active.length;
      const ids = new BigInt64Array(B * seq);
      const lens = new BigInt64Array(B);
      const h0 = new Float32Array(L * B * H);
      const c0 = new Float32Array(L * B * H);
      const p0 = new Float32Array(B * P);
      active.forEach((j, b) => {
        const row = rows[idx[j]];
        const end = Math.min(row.length, off + window);
        for (let t = off; t < end; t++) ids[b * seq + t - off] = BigInt(row[t]);
        lens[b] = BigInt(end - off);
        p0.set(st[j].p, b * P);
        for (let l = 0; l < L; l++) {
          h0.set(st[j].h.subarray(l * H, (l + 1) * H), (l * B + b) * H);
          c0.set(st[j].c.subarray(l * H, (l + 1) * H), (l * B + b) * H);
        }
      });
      const feeds = {
        input_ids: new ort.Tensor('int64', ids, [B, seq]),
        lengths: new ort.Tensor('int64', lens, [B]),
        h0: new ort.Tensor('float32', h0, [L, B, H]),
        c0: new ort.Tensor('float32', c0, [L, B, H]),
      };
      if (P > 0) feeds.p0 = new ort.Tensor('float32', p0, [B, P]);
      const out = await sess.run(feeds);
      const probs = out.probs.data, hn = out.hn.data, cn = out.cn.data;
      active.forEach((j, b) => {
        scores[idx[j]] = probs[2 * b + 1];
        if (P > 0) st[j].p.set(out.pn.data.subarray(b * P, (b + 1) * P));
        for (let l = 0; l < L; l++) {
          st[j].h.set(hn.subarray((l * B + b) * H, (l * B + b + 1) * H), l * H);
          st[j].c.set(cn.subarray((l * B + b) * H, (l * B + b + 1) * H), l * H);
        }
      });
    }
  }
  return scores;
}

async function main() {
  const a = args();
  const texts = readLines(a.clean);
  const goIDs = readLines(a.ids);
  if (texts.length !== goIDs.length) throw new Error(`${texts.length} texts but ${goIDs.length} id rows`);
  const res = { items: texts.length, hf_tokenize: [], ortnode_compute: [], ortnode_e2e: [] };

  const tok = Tokenizer.fromFile(a.tokenizer);
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
  const sess = await ort.InferenceSession.create(a.model, opts);
  // State shapes from the bundle's card (beside model.onnx): layers, hidden and, for a v2 model
  // (input p0), the pooled state's width.
  const arch = JSON.parse(fs.readFileSync(path.join(path.dirname(a.model), 'card.json'), 'utf8')).architecture || {};
  const L = arch.layers || 1, H = arch.hidden || 128;
  const P = sess.inputNames.includes('p0') ? arch.pooled_state : 0;
  if (sess.inputNames.includes('p0') && !(P > 0)) throw new Error('model has input p0 but its card gives no architecture.pooled_state');
  // Warm-up on a slice (JIT, allocator, thread pool); the timed runs do it all.
  await encodeAll(tok, texts.slice(0, 64));
  await scoreAll(sess, goIDs.slice(0, 64), a.batch, a.window, L, H, P);

  let mismatch = -1;
  for (let r = 0; r < a.reps; r++) {
    let t0 = now();
    const hfIDs = await encodeAll(tok, texts);
    res.hf_tokenize.push(now() - t0);
    if (mismatch < 0) {
      mismatch = 0;
      hfIDs.forEach((ids, i) => {
        const g = goIDs[i];
        if (ids.length !== g.length || ids.some((v, k) => v !== g[k])) mismatch++;
      });
    }

    t0 = now();
    const scores = await scoreAll(sess, goIDs, a.batch, a.window, L, H, P);
    res.ortnode_compute.push(now() - t0);
    res.ortnode_scores = Array.from(scores); // the driver compares them with the Go backends

    t0 = now();
    const ids = await encodeAll(tok, texts);
    await scoreAll(sess, ids, a.batch, a.window, L, H, P);
    res.ortnode_e2e.push(now() - t0);
  }
  res.ids_mismatch = mismatch;
  res.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify(res) + '\n');
}

main().catch((e) => {
  console.error('peers.js:', e.stack || e.message);
  process.exit(1);
});
