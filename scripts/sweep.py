#!/usr/bin/python3
"""Seed sweep of the make-model recipe: per-file real-call ROC-AUC, median and min-max.

  make sweep SEEDS="1 3 5"      (or: /usr/bin/python3 scripts/sweep.py --seeds 1 3 5 [--jobs 1])

The recipe is an ensemble of MEMBERS models (make-model.sh's MEMBERS, 2 since v0.9.0): "seed" k
trains members k..k+MEMBERS-1, so the seeds of one sweep must be at least MEMBERS apart (1 3 5),
or two ensembles would share a member and their spread would look smaller than it is; the sweep
refuses such seeds. Each ensemble trains JOBS members at once (make-model.sh, 2), so --jobs 1
already keeps 2 cores busy. MEMBERS=1 sweeps single models (--seeds 1 2 3 --jobs 2).

For each training seed, runs scripts/make-model.sh (same corpus: CORPUS_SEED, default 1) into
build/sweep/seed-N (bundle in build/sweep/seed-N/bundle, with model.pt), skipping the Go parity and
card steps, then scores the checkpoint on each real-eval file with scripts/realeval_torch.py
(whole call up to --max-tokens tokens, zero state). Also fits the token 1-3-gram TF-IDF LR
baseline on the same corpus and vocabulary (all generated calls) as the bar to beat.

EVALUATION ONLY: real files are never trained on and never pick thresholds or epochs; every file
is reported separately, never pooled. Writes build/sweep/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3"
FILES = ("aishield_whisper", "junhoeku_valtest", "korccvid_v1.3.clean", "vguard")


def sh(cmd: List[str], log: str, env: Dict[str, str]) -> None:
    with open(log, "w") as f:
        r = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {r.returncode}); see {log}")


def tokenize_real(work: str, real_dir: str) -> str:
    out = os.path.join(work, "real")
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(real_dir)):
        if not name.endswith(".jsonl"):
            continue
        dst = os.path.join(out, name)
        with open(dst, "w") as f:
            subprocess.run([os.path.join(REPO, "bin", "callwatch"), "tokenize", "--tokenizer",
                            os.path.join(work, "tokenizer.json"), "--normalizer",
                            os.environ.get("NORMALIZER", ""), "--input",
                            os.path.join(real_dir, name), "--format", "jsonl"],
                           cwd=REPO, stdout=f, check=True)
    return out


def make_corpus(a) -> str:
    """One corpus snapshot for every seed (corpus/base may change while the sweep runs)."""
    if a.corpus:
        return os.path.abspath(a.corpus)
    d = os.path.join(REPO, a.out, "corpus")
    if not (a.reuse and os.path.exists(os.path.join(d, "calls.jsonl"))):
        # make-model.sh's own corpus step, so its settings (CORPUS_SET, MIN_CALLS, REGISTER_SHIFT)
        # and their defaults are the shipped recipe's.
        sh(["bash", "scripts/make-model.sh"], os.path.join(REPO, a.out, "corpus.log"),
           dict(os.environ, CORPUS_ONLY="1", CORPUS_DIR=d, CORPUS_SEED=str(a.corpus_seed),
                WORK=os.path.join(REPO, a.out), SKIP_BUILD="1"))
    return d


def run_seed(seed: int, a) -> Dict[str, float]:
    work = os.path.join(REPO, a.out, f"seed-{seed}")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, SEED=str(seed), CORPUS_SEED=str(a.corpus_seed), WORK=work,
               OUT=os.path.join(work, "bundle"), CORPUS_DIR=a.corpus_dir, CORPUS_READY="1",
               PARITY="0", REAL_EVAL="0", CHECKPOINT="1", SKIP_BUILD="1")
    t0 = time.time()
    if not (a.reuse and os.path.exists(os.path.join(work, "model.pt"))):
        sh(["bash", "scripts/make-model.sh"], os.path.join(work, "make-model.log"), env)
    real = tokenize_real(work, a.real)
    res_path = os.path.join(work, "real_auc.jsonl")
    if os.path.exists(res_path):
        os.remove(res_path)
    sh([PY, os.path.join(HERE, "realeval_torch.py"), "--real", real, "--ckpt",
        os.path.join(work, "model.pt"), "--max-tokens", str(a.max_tokens), "--json", res_path]
       + (["--baseline", "--train", os.path.join(work, "train.jsonl"), "--baseline-all"]
          if seed == a.seeds[0] else []),
       os.path.join(work, "realeval.log"), dict(os.environ))
    rows = [json.loads(l) for l in open(res_path)]
    mine = next(r for r in rows if r["model"].endswith("model.pt"))
    card_path = os.path.join(work, "bundle", "card.json")
    if os.path.exists(card_path):
        with open(card_path, encoding="utf-8") as f:
            card = json.load(f)
        card["real_eval_torch"] = {
            "note": "Real STT transcripts, evaluation only (never trained on, never used for "
                    "thresholds or selection); per file, never pooled. PyTorch scoring of "
                    f"model.pt, whole call up to {a.max_tokens} tokens, zero state.",
            "roc_auc": mine["auc"], "normal_fpr_at_thresholds": mine.get("fpr"),
            "thresholds": mine.get("thresholds")}
        with open(card_path, "w", encoding="utf-8") as f:
            json.dump(card, f, ensure_ascii=False, indent=2)
            f.write("\n")
    print(f"seed {seed}: " + " ".join(f"{k} {v:.3f}" for k, v in mine["auc"].items())
          + f"  ({time.time() - t0:.0f}s)", flush=True)
    return {r["model"]: r["auc"] for r in rows}


def overlapping_seeds(seeds: List[int], members: int):
    """The first pair of seeds whose ensembles (members k..k+members-1) share a member, or None."""
    ss = sorted(set(seeds))
    for x, y in zip(ss, ss[1:]):
        if y - x < max(members, 1):
            return (x, y)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--jobs", type=int, default=1,
                    help="seeds trained at once (each trains JOBS members at once, 1 thread each)")
    ap.add_argument("--corpus-seed", type=int, default=1)
    ap.add_argument("--real", default=os.environ.get("REAL_EVAL_DIR", "/work/shared/data/real-eval"))
    ap.add_argument("--out", default="build/sweep")
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--reuse", action="store_true", help="skip training where model.pt exists")
    ap.add_argument("--corpus", help="use this generated corpus (calls.jsonl, stats.json) as it is")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.real):
        print(f"sweep: no real-eval files in {a.real}", file=sys.stderr)
        return 2
    clash = overlapping_seeds(a.seeds, int(os.environ.get("MEMBERS", "2")))
    if clash:
        print(f"sweep: seeds {clash[0]} and {clash[1]} share ensemble members (MEMBERS="
              f"{os.environ.get('MEMBERS', '2')}: seed k trains members k..k+MEMBERS-1); use seeds that many apart, "
              f"e.g. --seeds 1 3 5, or MEMBERS=1 for single models", file=sys.stderr)
        return 2
    # Built once: every seed tokenizes with the same binary (make-model.sh runs with SKIP_BUILD=1).
    if subprocess.run(["go", "build", "-o", "bin/callwatch", "./cmd/callwatch"], cwd=REPO).returncode:
        if not os.access(os.path.join(REPO, "bin", "callwatch"), os.X_OK):
            raise SystemExit("sweep: go build failed and there is no bin/callwatch")
        print("sweep: go build failed; using the existing bin/callwatch", file=sys.stderr)
    os.makedirs(os.path.join(REPO, a.out), exist_ok=True)
    a.corpus_dir = make_corpus(a)
    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        results = dict(zip(a.seeds, ex.map(lambda s: run_seed(s, a), a.seeds)))
    lstm = {s: next(v for k, v in r.items() if k.endswith("model.pt")) for s, r in results.items()}
    base = results[a.seeds[0]].get("lr-token-1-3gram")
    summary = {"seeds": a.seeds, "per_seed": lstm, "baseline_lr_token_1_3gram": base, "files": {},
               "real_normal_fpr": {}}
    for s in a.seeds:
        for l in open(os.path.join(REPO, a.out, f"seed-{s}", "real_auc.jsonl")):
            r = json.loads(l)
            if r["model"].endswith("model.pt"):
                summary["real_normal_fpr"][s] = r.get("fpr")
    print(f"\n{'file':22s} {'LSTM median':>11s} {'min-max':>13s} {'LR 1-3gram':>10s}")
    for f in sorted(next(iter(lstm.values()))):
        vals = [lstm[s][f] for s in a.seeds]
        med = statistics.median(vals)
        summary["files"][f] = {"median": med, "min": min(vals), "max": max(vals),
                               "baseline": base.get(f) if base else None}
        print(f"{f:22s} {med:11.3f} {min(vals):6.3f}-{max(vals):.3f} "
              f"{(base or {}).get(f, float('nan')):10.3f}")
    print("\nreal normal FPR at the synthetic thresholds (suspicious/dangerous), per seed:")
    for s in a.seeds:
        fpr = summary["real_normal_fpr"].get(s) or {}
        print(f"  seed {s}: " + " ".join(f"{k} {v.get('suspicious', float('nan')):.3f}/"
                                         f"{v.get('dangerous', float('nan')):.3f}"
                                         for k, v in fpr.items()))
    with open(os.path.join(REPO, a.out, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
