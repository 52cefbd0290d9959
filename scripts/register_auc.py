#!/usr/bin/python3
"""How much of each file's ranking its speech level alone gives (scripts/README.md "Round 15").

  /usr/bin/python3 scripts/register_auc.py [--real DIR] [--corpus build/corpus/calls.jsonl ...] [--polite]

Scores every call by its rate of formal endings (scripts/corpus/register.py formal_rate: 니다,
니까, 십시오, 고객님, ... per 1,000 characters) and prints, per file, the ROC-AUC of that score
for phishing, and the quartiles of the rate per class. No training. Above 0.5 a file's scams are
the more formal calls, below 0.5 its normals are. EVALUATION ONLY for the real-eval files: per
file, never pooled, and no text is printed. --polite first folds formal endings into polite ones
(register.shift_down, the rules of the tokenizer's polite-endings normalizer): what of the
speech level a model trained with that normalizer can still read.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "corpus"))
from register import formal_rate, shift_down  # noqa: E402
from shortcut import roc_auc  # noqa: E402


def quartiles(xs: list[float]) -> str:
    xs = sorted(xs)
    return "/".join(f"{xs[int(len(xs) * q)]:.1f}" for q in (0.25, 0.5, 0.75)) if xs else "-"


def report(path: Path, polite: bool = False) -> str:
    y: list[bool] = []
    s: list[float] = []
    for line in path.open(encoding="utf-8"):
        r = json.loads(line)
        y.append(r["label"] == "phishing")
        s.append(formal_rate(shift_down(r["text"]) if polite else r["text"]))
    ph = [x for x, l in zip(s, y) if l]
    no = [x for x, l in zip(s, y) if not l]
    # Generated corpora are all calls.jsonl: name them by their directory.
    name = f"{path.parent.name}/{path.name}" if path.name == "calls.jsonl" else path.name
    return (f"{name:32s} {roc_auc(s, y):6.3f}   phishing {quartiles(ph):>15s} ({len(ph)})"
            f"   normal {quartiles(no):>15s} ({len(no)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", type=Path, default=Path(os.environ.get("REAL_EVAL_DIR", "/work/shared/data/real-eval")))
    ap.add_argument("--corpus", type=Path, action="append", default=[], help="a generated calls.jsonl (repeatable)")
    ap.add_argument("--polite", action="store_true",
                    help="fold formal endings into polite ones first (the polite-endings normalizer)")
    a = ap.parse_args(argv)
    files = sorted(a.real.glob("*.jsonl")) if a.real.is_dir() else []
    if not files and not a.corpus:
        print(f"register_auc: no real-eval files in {a.real} and no --corpus", file=sys.stderr)
        return 2
    print(f"{'file':32s} {'AUC':>6s}   formal endings per 1,000 characters, quartiles (calls)")
    for p in files + a.corpus:
        print(report(p, a.polite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
