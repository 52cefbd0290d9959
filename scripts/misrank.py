#!/usr/bin/python3
"""Where a model loses on the real-eval files: misranked (normal, scam) pairs by length, and
what the family head reads the worst-ranked calls as.

EVALUATION ONLY, and text-free: it reads token ids, labels and scores, never prints a
transcript, and its output is counts and shares (round 13 in scripts/README.md).

For each file and model it prints the share of all (normal, scam) pairs that the model ranks
the wrong way (normal >= scam), split by the scam's length quartile and by the normal's, and
with --families the family-head reading of the normals scored above the scams' lower quartile
and of the scams scored below the normals' 90th percentile.

  /usr/bin/python3 scripts/misrank.py --real SWEEP/seed-1/real --ckpt SWEEP/seed-1/model.pt \\
      [--ckpt OTHER.pt ...] [--baseline --train SWEEP/seed-1/train.jsonl] [--families]

--real holds `callwatch tokenize` output of each real-eval file with the checkpoints' tokenizer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from typing import Dict, List, Sequence, Tuple

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from realeval_torch import SHORT, fit_token_lr, load_real, score_model  # noqa: E402
from train import roc_auc  # noqa: E402


def quartile_bins(lengths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(cut points [3], bin index 0..3 of every length): the quartiles of these lengths."""
    cuts = np.quantile(lengths, [0.25, 0.5, 0.75])
    return cuts, np.digitize(lengths, cuts)


def misranked_by_quartile(y: np.ndarray, score: np.ndarray, lengths: np.ndarray) -> Dict[str, List[float]]:
    """Share of all (normal, scam) pairs ranked the wrong way (normal >= scam), split into the
    scam's length quartiles ("scam") and the normal's ("normal"). Each list sums to 1 - AUC
    up to ties (a tie counts whole here, half in the AUC)."""
    y = np.asarray(y).astype(bool)
    sn, ss = score[~y], score[y]
    wrong = sn[:, None] >= ss[None, :]
    total = wrong.size
    _, bs = quartile_bins(lengths[y])
    _, bn = quartile_bins(lengths[~y])
    return {"scam": [float(wrong[:, bs == q].sum() / total) for q in range(4)],
            "normal": [float(wrong[bn == q].sum() / total) for q in range(4)]}


def family_reads(model: torch.nn.Module, rows: Sequence[Sequence[int]], idx: Sequence[int]) -> Counter:
    """The family head's top family for each of rows[idx], counted."""
    fams = model.families
    out: Counter = Counter()
    with torch.no_grad():
        for i in idx:
            _, f = model.train_logits(torch.tensor([list(rows[i])]), torch.tensor([len(rows[i])]))
            out[fams[int(f.argmax())]] += 1
    return out


def reads(c: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.most_common(8)) or "none"


def fmt(xs: Sequence[float]) -> str:
    return " / ".join(f"{x:.4f}" for x in xs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", required=True, help="directory of tokenized real-eval JSONL files")
    ap.add_argument("--ckpt", action="append", default=[], help="model.pt checkpoint (repeatable)")
    ap.add_argument("--baseline", action="store_true", help="also the token 1-3-gram TF-IDF LR")
    ap.add_argument("--train", help="tokenized corpus (for --baseline; its seed's training split)")
    ap.add_argument("--split-seed", type=int, default=1)
    ap.add_argument("--families", action="store_true", help="family-head reading of the worst-ranked calls")
    ap.add_argument("--max-tokens", type=int, default=4096)
    a = ap.parse_args(argv)
    if a.baseline and not a.train:
        ap.error("--baseline needs --train")
    if not a.ckpt and not a.baseline:
        ap.error("nothing to score: give --ckpt and/or --baseline")
    torch.set_num_threads(1)
    real = load_real(a.real, a.max_tokens)
    if not real:
        raise SystemExit(f"{a.real}: no *.jsonl files (tokenize the real-eval files with the model's tokenizer)")
    scorers: List[Tuple[str, object]] = []
    if a.baseline:
        scorers.append(("lr-token-1-3gram", fit_token_lr(a.train, a.split_seed)[0]))
    from cwmodel import load_checkpoint
    for ck in a.ckpt:
        scorers.append((ck, load_checkpoint(ck)))
    for name, (rows, y) in real.items():
        lengths = np.array([len(r) for r in rows])
        yb = y.astype(bool)
        print(f"== {SHORT.get(name, name)}: {int(yb.sum())} scams, {int((~yb).sum())} normals; "
              f"scam length quartile cuts {fmt(quartile_bins(lengths[yb])[0])}, "
              f"normal {fmt(quartile_bins(lengths[~yb])[0])} tokens")
        for label, m in scorers:
            s = m.predict(rows) if label == "lr-token-1-3gram" else score_model(m, rows)
            q = misranked_by_quartile(y, s, lengths)
            print(f"  {label}: AUC {roc_auc(y, s):.4f}; misranked pairs by scam quartile {fmt(q['scam'])}, "
                  f"by normal quartile {fmt(q['normal'])}")
            if a.families and label != "lr-token-1-3gram":
                hi = [i for i in range(len(y)) if not yb[i] and s[i] >= np.quantile(s[yb], 0.25)]
                lo = [i for i in range(len(y)) if yb[i] and s[i] < np.quantile(s[~yb], 0.9)]
                print(f"    {len(hi)} normals above the scams' lower quartile, read as: "
                      + reads(family_reads(m, rows, hi)))
                print(f"    {len(lo)} scams below the normals' 90th percentile, read as: "
                      + reads(family_reads(m, rows, lo)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
