#!/usr/bin/python3
"""Fast torch-side real-call evaluation: per-file ROC-AUC of checkpoints (and of
the token-n-gram LR baseline) on the tokenized real-eval files.

EVALUATION ONLY: the real files are never trained on and never used to pick
thresholds, epochs or early stopping; per-file figures are reported separately,
never pooled. Whole call, first --max-tokens tokens, zero state (the v2 model
streamed over windows gives the same score as one pass).

  /usr/bin/python3 scripts/realeval_torch.py --real build/exp/real --ckpt DIR/model.pt [...]
  /usr/bin/python3 scripts/realeval_torch.py --real build/exp/real --baseline --train build/exp/train.jsonl

--real holds `callwatch tokenize` output of each real-eval file (same tokenizer as the model).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from train import roc_auc  # noqa: E402

FILES = ("aishield_whisper", "junhoeku_valtest", "korccvid_v1.3.clean", "vguard")
SHORT = {"aishield_whisper": "aishield", "junhoeku_valtest": "junhoeku",
         "korccvid_v1.3.clean": "korccvid", "vguard": "vguard"}


def load_real(d: str, max_tokens: int) -> Dict[str, Tuple[List[List[int]], np.ndarray]]:
    out = {}
    for path in sorted(glob.glob(os.path.join(d, "*.jsonl"))):
        name = os.path.basename(path)[:-len(".jsonl")]
        rows, ys = [], []
        with open(path, encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                ids = r.get("ids") or [1]
                rows.append(ids[:max_tokens])
                ys.append(1 if r["label"] == "phishing" else 0)
        out[name] = (rows, np.array(ys))
    return out


def score_model(model: torch.nn.Module, rows: List[List[int]], batch_tokens: int = 65536) -> np.ndarray:
    """P(phishing) per row, zero state, batched by length."""
    model.eval()
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    scores = np.zeros(len(rows))
    k = 0
    with torch.no_grad():
        while k < len(order):
            s = len(rows[order[min(k + 63, len(order) - 1)]])
            n = max(1, min(64, batch_tokens // max(1, s)))
            idx = order[k:k + n]
            s = max(len(rows[i]) for i in idx)
            x = torch.zeros(len(idx), s, dtype=torch.int64)
            for j, i in enumerate(idx):
                x[j, :len(rows[i])] = torch.tensor(rows[i])
            lens = torch.tensor([len(rows[i]) for i in idx])
            logits = model.logits_at_last(x, lens)
            scores[idx] = torch.softmax(logits, -1)[:, 1].double().numpy()
            k += len(idx)
    return scores


def fit_token_lr(train_path: str, split_seed: int, use_all: bool = False):
    """(the bar's token 1-3-gram TF-IDF LR fitted on train.py's training split of a tokenized
    corpus, or on all of it, number of calls it saw)."""
    from lrteacher import LRTeacher
    from train import load_calls, split_by_group
    calls = load_calls(train_path, 1 << 30)
    train = calls if use_all else split_by_group(calls, 0.2, split_seed)[0]
    return LRTeacher().fit([c.ids for c in train], [c.label for c in train]), len(train)


def per_file(real, score: Callable[[List[List[int]]], np.ndarray]) -> Dict[str, float]:
    return {name: roc_auc(y, score(rows)) for name, (rows, y) in real.items()}


def fmt(res: Dict[str, float]) -> str:
    return " ".join(f"{SHORT.get(k, k)} {v:.3f}" for k, v in res.items())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", required=True, help="directory of tokenized real-eval JSONL files")
    ap.add_argument("--ckpt", nargs="*", default=[], help="model.pt checkpoints")
    ap.add_argument("--baseline", action="store_true", help="also the token 1-3-gram TF-IDF LR")
    ap.add_argument("--train", help="tokenized corpus (for --baseline; its training split)")
    ap.add_argument("--split-seed", type=int, default=1, help="train.py split seed for --baseline")
    ap.add_argument("--baseline-all", action="store_true",
                    help="fit the baseline on every generated call (the reference bar), not the split")
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--json", help="append one JSON line per model to this file")
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    real = load_real(a.real, a.max_tokens)
    results = []
    if a.baseline:
        t0 = time.time()
        teacher, n = fit_token_lr(a.train, a.split_seed, a.baseline_all)
        res = per_file(real, teacher.predict)
        print(f"lr-token-1-3gram (train split {n} calls, {time.time() - t0:.0f}s): {fmt(res)}")
        results.append({"model": "lr-token-1-3gram", "auc": res})
    from cwmodel import load_checkpoint
    for ck in a.ckpt:
        t0 = time.time()
        model = load_checkpoint(ck)
        scores = {name: score_model(model, rows) for name, (rows, _) in real.items()}
        res = {name: roc_auc(real[name][1], s) for name, s in scores.items()}
        # False-positive rate on real normals at the checkpoint's (synthetic) thresholds.
        th = torch.load(ck, map_location="cpu").get("extra", {}).get("thresholds", {})
        fpr = {name: {lvl: float((s[real[name][1] == 0] >= t).mean()) for lvl, t in th.items()}
               for name, s in scores.items()}
        print(f"{ck}: {fmt(res)}  ({time.time() - t0:.0f}s)", flush=True)
        if th:
            print("  real normal FPR at " + ", ".join(f"{k} {v:.3f}" for k, v in th.items()) + ": " +
                  " ".join(f"{SHORT.get(n, n)} {f['suspicious']:.3f}/{f['dangerous']:.3f}"
                           for n, f in fpr.items()), flush=True)
        results.append({"model": ck, "auc": res, "fpr": fpr, "thresholds": th})
    if a.json:
        with open(a.json, "a", encoding="utf-8") as f:
            for r in results:
                r["tag"] = a.tag
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
