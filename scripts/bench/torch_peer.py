"""PyTorch eager peer for scripts/bench (run with /usr/bin/python3).

Rebuilds the bundle's model in PyTorch with scripts/onnx2torch.py (v1, or v2
with the pooled state p carried beside h and c), then scores the
Go tokenizer's ids with the batching of callwatch.Detector.ScoreIDs: rows
sorted by length, batches of --batch, windows of --window tokens with the
state carried. --threads sets torch's intra-op threads (the caller sets
OPENBLAS_NUM_THREADS/OMP_NUM_THREADS to match): 1 for a like-for-like comparison
with one onnxruntime session, 2 for PyTorch's best on the whole 2-core machine.
Prints one JSON object: seconds per repetition and the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import List

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import onnx2torch  # noqa: E402


def load(path: str) -> torch.nn.Module:
    """The bundle's model in PyTorch, v1 (h, c) or v2 (h, c, p), checked against the graph."""
    return onnx2torch.load_onnx(path).eval()


@torch.no_grad()
def score_all(model: torch.nn.Module, rows: List[List[int]], batch: int, window: int) -> List[float]:
    L, H = model.cfg.layers, model.cfg.hidden
    P = getattr(model, "pooled_size", 0)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    scores = [0.0] * len(rows)
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        h = torch.zeros(L, len(idx), H)
        c = torch.zeros(L, len(idx), H)
        pst = torch.zeros(len(idx), P)
        off = 0
        while True:
            active = [j for j, r in enumerate(idx) if len(rows[r]) > off]
            if not active:
                break
            parts = [rows[idx[j]][off:off + window] for j in active]
            seq = max(len(p) for p in parts)
            ids = torch.zeros(len(active), seq, dtype=torch.int64)
            for b, p in enumerate(parts):
                ids[b, :len(p)] = torch.tensor(p, dtype=torch.int64)
            lens = torch.tensor([len(p) for p in parts], dtype=torch.int64)
            act = torch.tensor(active)
            if P:
                logits, _, hn, cn, pn = model.encode(ids, lens, h[:, act].contiguous(), c[:, act].contiguous(), pst[act])
                pst[act] = pn
            else:
                logits, hn, cn = model.encode(ids, lens, h[:, act].contiguous(), c[:, act].contiguous())
            probs = torch.softmax(logits, dim=-1)[:, 1].tolist()
            h[:, act], c[:, act] = hn, cn
            for b, j in enumerate(active):
                scores[idx[j]] = probs[b]
            off += window
    return scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.ids, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    model = load(a.model)
    score_all(model, rows[:64], a.batch, a.window)  # warm-up on a slice
    times: List[float] = []
    scores: List[float] = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        scores = score_all(model, rows, a.batch, a.window)
        times.append(time.perf_counter() - t0)
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({"items": len(rows), "torch_compute": times, "torch_scores": scores,
               "torch_version": torch.__version__, "peak_rss_mb": rss}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
