#!/usr/bin/python3
"""Learning curve: does writing more base dialogues still help on real calls? (`make learning-curve`)

    /usr/bin/python3 scripts/learning_curve.py [--fracs 0.25,0.5,1] [--seeds 1,2,3] [--no-lstm]
        [--corpus DIR] [--tokenizer FILE] [--out build/learning-curve] [--real-eval DIR]

For each fraction of the base dialogues (a seeded sample of whole dialogues, the same share of each
class; every variant of a chosen dialogue comes along) and each seed, it trains
  - the token-id 1-3-gram TF-IDF + LR baseline (scripts/baselines.py), and
  - unless --no-lstm, the LSTM with make-model.sh's recipe (its TRAIN_ARGS, or $TRAIN_ARGS):
    one model, not make-model.sh's MEMBERS-model ensemble, so since v0.9.0 it is one E48 H80
    member (the published curve, round 6, used one E64 H128 model),
on that fraction, and prints per real-eval file the ROC-AUC median and min-max over seeds. Files
are never pooled. The real-eval files are evaluation only: nothing is trained, selected or
thresholded on them.

The corpus is generated as make-model.sh does (gen.py --seed 1 --min-calls 36000 --only
corpus/sets/v0.6-hard10.txt; --corpus-set, --min-calls) unless --corpus
names one; every run uses one tokenizer (the shipped model's, or --tokenizer), so fractions differ
only in the dialogues they see. Runs are cached under --out (delete it to redo).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines as bl  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = "/usr/bin/python3"
SHORT = {"aishield_whisper": "aishield", "junhoeku_valtest": "junhoeku",
         "korccvid_v1.3.clean": "korccvid", "vguard": "vguard"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def recipe_args() -> list[str]:
    """make-model.sh's TRAIN_ARGS (one source of truth for the recipe), or $TRAIN_ARGS."""
    if os.environ.get("TRAIN_ARGS"):
        return shlex.split(os.environ["TRAIN_ARGS"])
    src = (REPO / "scripts" / "make-model.sh").read_text(encoding="utf-8")
    m = re.search(r'TRAIN_ARGS="\$\{TRAIN_ARGS:-(.*?)\}"', src, re.S)
    if not m:
        raise SystemExit("cannot read TRAIN_ARGS from scripts/make-model.sh; set $TRAIN_ARGS")
    return shlex.split(m.group(1).replace("\\\n", " "))


def sample_groups(recs: list[bl.Record], frac: float, seed: int) -> set[str]:
    """frac of each class's base dialogues, seeded; 1.0 is all of them."""
    by: dict[int, set[str]] = {}
    for r in recs:
        by.setdefault(r.label, set()).add(r.group)
    rng = random.Random(f"lc:{seed}")
    keep: set[str] = set()
    for lab in sorted(by):
        gs = sorted(by[lab])
        rng.shuffle(gs)
        keep.update(gs[:max(2, round(len(gs) * frac))])
    return keep


def auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s))


def lstm_run(tok_corpus: Path, groups: set[str], run_dir: Path, seed: int, vocab: int,
             real: dict[str, list[bl.Record]], args: list[str]) -> dict[str, float]:
    """Trains the make-model recipe on the chosen dialogues; per-file AUC of its checkpoint."""
    res_path = run_dir / "real_auc.json"
    if res_path.exists():
        return json.loads(res_path.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    data = run_dir / "train.jsonl"
    with tok_corpus.open(encoding="utf-8") as src, data.open("w", encoding="utf-8") as dst:
        for line in src:
            if json.loads(line).get("group") in groups:
                dst.write(line)
    cmd = [PY, str(REPO / "scripts" / "train.py"), "--data", str(data), "--vocab-size", str(vocab),
           "--out", str(run_dir), "--seed", str(seed), *args, "--no-export"]
    log("  " + " ".join(cmd))
    with (run_dir / "train.log").open("w") as lf:
        p = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=REPO / "scripts")
    if p.returncode != 0:
        raise SystemExit(f"training failed: see {run_dir / 'train.log'}")
    sys.path.insert(0, str(REPO / "scripts"))
    import torch  # noqa: F401
    from cwmodel import load_checkpoint
    from realeval_torch import score_model
    model = load_checkpoint(str(run_dir / "model.pt"))
    out = {}
    for name, recs in real.items():
        rows = [r.ids[:4096] or [1] for r in recs]
        out[name] = auc(np.array([r.label for r in recs]), score_model(model, rows))
    res_path.write_text(json.dumps(out))
    return out


def summarize(vals: list[float]) -> str:
    if not vals:
        return "—"
    return f"{statistics.median(vals):.3f} ({min(vals):.3f}–{max(vals):.3f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fracs", default="0.25,0.5,1")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--no-lstm", action="store_true", help="baseline only (minutes instead of hours)")
    ap.add_argument("--corpus", type=Path, help="an already generated corpus directory (calls.jsonl)")
    ap.add_argument("--corpus-set", default="corpus/sets/v0.6-hard10.txt",
                    help="base dialogues to draw from (make-model.sh's CORPUS_SET); '' for all of corpus/base")
    ap.add_argument("--min-calls", type=int, default=36000, help="gen.py --min-calls (make-model.sh's MIN_CALLS)")
    ap.add_argument("--register-shift", type=float, default=bl.REGISTER_SHIFT,
                    help="gen.py --register-shift (make-model.sh's REGISTER_SHIFT)")
    ap.add_argument("--tokenizer", type=Path, default=REPO / bl.DEFAULT_MODEL / "tokenizer.json")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "learning-curve")
    ap.add_argument("--real-eval", type=Path, default=Path(os.environ.get("REAL_EVAL_DIR", bl.DEFAULT_REAL_EVAL)))
    a = ap.parse_args(argv)
    # train.py runs in scripts/: every path it gets must be absolute.
    a.out = a.out.resolve()
    if a.corpus:
        a.corpus = a.corpus.resolve()
    fracs = [float(x) for x in a.fracs.split(",")]
    seeds = [int(x) for x in a.seeds.split(",")]
    a.out.mkdir(parents=True, exist_ok=True)
    binp = REPO / "bin" / "callwatch"
    subprocess.run(["go", "build", "-o", str(binp), "./cmd/callwatch"], check=True, cwd=REPO)
    corpus = a.corpus
    if corpus is None:
        corpus = a.out / "corpus"
        only = ["--only", a.corpus_set] if a.corpus_set else []
        log(f"== corpus (gen.py --seed 1 --min-calls {a.min_calls} {' '.join(only)}, as make-model.sh)")
        subprocess.run([PY, str(REPO / "scripts" / "corpus" / "gen.py"), "--out", str(corpus), "--seed", "1",
                        "--min-calls", str(a.min_calls), *only, "--register-shift", str(a.register_shift)],
                       check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    calls = corpus / "calls.jsonl"
    tok = a.out / "corpus.tok.jsonl"
    bl.tokenize(binp, a.tokenizer, calls, tok)
    recs = bl.load_records(calls, tok)
    # train.py wants {"id","group","label","ids"}: one file with groups, filtered per run.
    tok_full = a.out / "corpus.train.jsonl"
    with tok_full.open("w", encoding="utf-8") as f:
        fam = {str(r["id"]): r.get("family", "") for r in bl.read_jsonl(calls)}
        for r in recs:
            f.write(json.dumps({"id": r.id, "group": r.group, "family": fam.get(r.id, ""),
                                "label": "phishing" if r.label else "normal", "ids": r.ids}) + "\n")
    real: dict[str, list[bl.Record]] = {}
    files = sorted(a.real_eval.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no real-eval files in {a.real_eval}: the learning curve is measured on them")
    for f in files:
        t = a.out / f"real.{f.stem}.tok.jsonl"
        bl.tokenize(binp, a.tokenizer, f, t)
        real[f.stem] = bl.load_records(f, t)
    vocab = len(json.loads(a.tokenizer.read_text(encoding="utf-8"))["model"]["vocab"])
    targs = recipe_args()
    n_groups = {lab: len({r.group for r in recs if r.label == lab}) for lab in (0, 1)}
    results: dict[str, Any] = {"fracs": fracs, "seeds": seeds, "corpus": str(corpus), "tokenizer": str(a.tokenizer),
                               "groups": {"normal": n_groups[0], "phishing": n_groups[1]}, "recipe": targs, "runs": []}
    for frac in fracs:
        for seed in seeds:
            groups = sample_groups(recs, frac, seed)
            train, _ = bl.split_by_group([r for r in recs if r.group in groups])
            log(f"== {frac:.0%} of base dialogues ({len(groups)} dialogues, {len(train)} train calls), seed {seed}")
            b = bl.fit_baselines([r.text for r in train], [r.ids for r in train], [r.label for r in train], seed=seed,
                                 stream_row=False)
            row = {"frac": frac, "seed": seed, "dialogues": len(groups), "ids-lr": {}, "lstm": {}}
            for name, rs in real.items():
                sc = b.scores([r.text for r in rs], [r.ids for r in rs])
                row["ids-lr"][name] = auc(np.array([r.label for r in rs]), sc["ids-lr"])
            if not a.no_lstm:
                row["lstm"] = lstm_run(tok_full, groups, a.out / f"lstm-{frac}-{seed}", seed, vocab, real, targs)
            log("   ids-lr " + " ".join(f"{SHORT.get(k, k)} {v:.3f}" for k, v in row["ids-lr"].items()) +
                ("   lstm " + " ".join(f"{SHORT.get(k, k)} {v:.3f}" for k, v in row["lstm"].items()) if row["lstm"] else ""))
            results["runs"].append(row)
    (a.out / "results.json").write_text(json.dumps(results, indent=1))
    names = list(real)
    print(f"Learning curve: real-eval ROC-AUC, median (min–max) over seeds {a.seeds}; "
          f"{n_groups[1]} phishing / {n_groups[0]} normal base dialogues at 100%")
    print()
    print("| base dialogues | model | " + " | ".join(SHORT.get(n, n) for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for frac in fracs:
        runs = [r for r in results["runs"] if r["frac"] == frac]
        for model in ("ids-lr", "lstm"):
            if model == "lstm" and a.no_lstm:
                continue
            cells = [summarize([r[model][n] for r in runs if n in r[model]]) for n in names]
            label = "token 1–3-gram LR" if model == "ids-lr" else "LSTM (make-model recipe)"
            print(f"| {frac:.0%} ({runs[0]['dialogues']}) | {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
