#!/usr/bin/python3
"""Export round-trip check used by `make test`.

Trains a tiny LSTM for a few steps on synthetic data (a row is class 1,
phishing, when it contains token 7), exports it with export.py to
DIR/model.onnx and writes DIR/fixtures.json (format: fixtures.py) with
PyTorch's outputs on padded mixed batches, nonzero and carried state. The Go
test then runs onnxruntime and the native backend on the file and compares
both against the fixtures. A few seconds on 2 CPU cores.

  /usr/bin/python3 scripts/roundtrip.py --out DIR [--seed N]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import List, Optional

# Debian's torch calls a threaded OpenBLAS whose threads fight torch's own
# OpenMP threads: 3x slower training on 2 cores. No effect on PyPI (MKL) torch.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cwmodel import POOL_NORMS, ModelConfig, build_model
from export import export_onnx, op_list
from fixtures import CaseBuilder

TRIGGER = 7


def synthetic(rng: random.Random, n: int, vocab: int, max_len: int):
    rows: List[List[int]] = []
    labels: List[int] = []
    for i in range(n):
        length = rng.randint(1, max_len)
        row = [rng.choice([t for t in range(1, vocab) if t != TRIGGER]) for _ in range(length)]
        if i % 2:  # balanced classes
            row[rng.randrange(length)] = TRIGGER
        rows.append(row)
        labels.append(i % 2)
    return rows, labels


def batchify(rows: List[List[int]]):
    s = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), s, dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    return ids, torch.tensor([len(r) for r in rows], dtype=torch.int64)


def train(cfg: ModelConfig, seed: int, steps: int) -> tuple:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    rows, labels = synthetic(rng, 512, cfg.vocab, 24)
    model.train()
    for step in range(steps):
        idx = rng.sample(range(len(rows)), 32)
        ids, lens = batchify([rows[i] for i in idx])
        y = torch.tensor([labels[i] for i in idx])
        logits = model.encode(ids, lens)[0]
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ids, lens = batchify(rows)
    with torch.no_grad():
        probs = model(ids, lens)[0]
    acc = float((probs.argmax(-1) == torch.tensor(labels)).float().mean())
    return model, acc


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="train a tiny model, export it, write fixtures")
    ap.add_argument("--out", required=True, help="directory for model.onnx and fixtures.json")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--arch", choices=("last", "pooled"), default="last",
                    help="last: v1 signature; pooled: v2 (p0/pn, family_probs)")
    ap.add_argument("--features", default="mean_h,max_h,last_h,mean_e",
                    help="pooled: head features (the state carries max_h only when the head reads it)")
    ap.add_argument("--pool-norm", choices=POOL_NORMS, default="mean")
    a = ap.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(2)
    os.makedirs(a.out, exist_ok=True)
    feats = tuple(f for f in a.features.split(",") if f)
    cfg = ModelConfig(vocab=48, embed=8, hidden=12, layers=a.layers, arch=a.arch,
                      families=("fam_a", "fam_b", "fam_c") if a.arch == "pooled" else (),
                      features=feats, pool_norm=a.pool_norm, pool_max_h="max_h" in feats)
    model, acc = train(cfg, a.seed, a.steps)
    om = export_onnx(model, os.path.join(a.out, "model.onnx"),
                     metadata={"callwatch.name": "roundtrip", "callwatch.seed": str(a.seed)})
    cb = CaseBuilder(model, seed=a.seed)
    cb.add_standard(long_len=120)
    diff = cb.check_onnx(om)
    cb.write(os.path.join(a.out, "fixtures.json"), "model.onnx")
    print(f"roundtrip: train accuracy {acc:.3f} after {a.steps} steps; {len(cb.cases)} cases; "
          f"ops {' '.join(op_list(om))}; max scaled |onnx reference - torch| = {diff:.3g}; "
          f"{time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
