#!/usr/bin/python3
"""Assemble a model bundle (model.onnx, tokenizer.json, card.json) from a
training work directory. The card pins both files by sha256 and carries the
thresholds and validation metrics from train_report.json.

  /usr/bin/python3 scripts/make_bundle.py --work build/model --out models/ko-vishing-lstm
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
from typing import Any, Dict


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def corpus_stats(st: Dict[str, Any]) -> Dict[str, Any]:
    """The generator's stats.json, less the long per-token lists."""
    keep = ("seed", "base_dialogues", "variants_per_base", "calls", "distinct_texts", "calls_per_class",
            "base_per_family", "chars_per_class", "noise_strength_per_class", "cut_share_per_class")
    out = {k: st[k] for k in keep if k in st}
    sc = st.get("shortcut", {})
    if "length" in sc:
        out["shortcut_checks"] = {
            "length_only_test_auc": sc["length"].get("auc"),
            "naive_bayes_words_test_auc": sc.get("nb_words", {}).get("auc"),
            "naive_bayes_char_bigrams_test_auc": sc.get("nb_bigrams", {}).get("auc"),
        }
    return out


def feature_words(report: dict) -> str:
    """The head's features in words, from the training report (the card's description)."""
    feats = report.get("architecture", {}).get("features") or ["mean_h", "max_h", "last_h", "mean_e"]
    norm = report.get("hyperparameters", {}).get("pool_norm")
    mean = {"sqrt": "sum / sqrt(n)", "pow0.625": "sum / n^0.625", "pow0.75": "sum / n^0.75"}.get(norm, "mean")
    words = {"mean_h": f"{mean} of hidden states", "max_h": "max of hidden states",
             "last_h": "last hidden state", "mean_e": f"{mean} of embeddings",
             "max_e": "max of embeddings", "att_h": "gated mean of hidden states",
             "slog_h": "signed log of the sum of hidden states", "slog_e": "signed log of the sum of embeddings",
             "avg_h": "mean of hidden states (divided by n whatever the pool norm)",
             "avg_e": "mean of embeddings (divided by n whatever the pool norm)",
             "rms_h": "direction of the sum of hidden states (divided by its root mean square)",
             "rms_e": "direction of the sum of embeddings (divided by its root mean square)"}
    return ", ".join(words.get(f, f) for f in feats)


def core_words(report: dict) -> str:
    """The recurrent core in words: one LSTM, or an ensemble merged into one (train.py --merge)."""
    members = report.get("ensemble") or []
    if len(members) < 2:
        return "Unidirectional LSTM"
    arch = report.get("architecture", {})
    k = len(members)
    return (f"{k} unidirectional LSTMs (seeds {', '.join(str(m.get('seed')) for m in members)}) merged into one "
            f"block-diagonal LSTM (embedding {arch.get('embed')}, hidden {arch.get('hidden')} in all) that scores their "
            f"mean logit")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--corpus", default="")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--name", default="ko-vishing-lstm")
    ap.add_argument("--version", default="0.4.0")
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--starter", action="store_true", help="mark the bundle as a starter model in its card")
    ap.add_argument("--with-checkpoint", action="store_true",
                    help="also copy model.pt and train_report.json into the bundle (candidates)")
    ap.add_argument("--command", default="make model", help="how the bundle was built (card)")
    ap.add_argument("--text-normalizer", default="",
                    help="the normalizer the tokenizer applied in training (card text_normalizer; '' for none)")
    args = ap.parse_args()

    with open(os.path.join(args.work, "train_report.json"), encoding="utf-8") as f:
        report: Dict[str, Any] = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    for name in ("model.onnx", "tokenizer.json"):
        shutil.copyfile(os.path.join(args.work, name), os.path.join(args.out, name))
    corpus: Dict[str, Any] = {}
    if args.corpus and os.path.exists(args.corpus):
        with open(args.corpus, encoding="utf-8") as f:
            corpus = json.load(f)
    hp = report.get("hyperparameters", {})
    pooled = hp.get("arch") == "pooled"
    for name in ("model.pt", "train_report.json"):  # provenance (not read by the runtime)
        src = os.path.join(args.work, name)
        if args.with_checkpoint and os.path.exists(src):
            shutil.copyfile(src, os.path.join(args.out, name))
    card_path = os.path.join(args.out, "card.json")
    card = {
        "name": args.name,
        "version": args.version,
        "description": (core_words(report) + " over WordPiece ids of Korean STT call transcripts; "
                        "P(phishing) from pooled summaries of the whole call so far ("
                        + feature_words(report) + ") plus scenario-family "
                        "probabilities; streamable through its (h, c, p) state." if pooled else
                        "Unidirectional LSTM over WordPiece ids of Korean STT call transcripts; "
                        "P(phishing) at the last token, streamable through its (h, c) state."),
        **({"starter": True} if args.starter else {}),
        "labels": ["normal", "phishing"],
        "thresholds": report["thresholds"],
        "max_seq_len": args.max_seq_len,
        "max_text_bytes": 8 << 20,
        **({"text_normalizer": args.text_normalizer} if args.text_normalizer else {}),
        "files": {
            "model.onnx": {"sha256": sha256(os.path.join(args.out, "model.onnx")),
                           "bytes": os.path.getsize(os.path.join(args.out, "model.onnx"))},
            "tokenizer.json": {"sha256": sha256(os.path.join(args.out, "tokenizer.json")),
                               "bytes": os.path.getsize(os.path.join(args.out, "tokenizer.json"))},
        },
        "architecture": ({
            **{k: v for k, v in report.get("architecture", {}).items() if k != "families"},
            "type": "embedding-lstm-pooled-heads",
        } if pooled else {
            "type": "embedding-lstm-linear-softmax",
            "vocab_size": hp.get("vocab_size"),
            "embed": hp.get("embed"),
            "hidden": hp.get("hidden"),
            "layers": hp.get("layers"),
            "opset": report.get("opset", 17),
        }),
        "training": {
            "corpus": "corpus/base (project-written dialogues) → scripts/corpus/gen.py",
            "corpus_stats": corpus_stats(corpus),
            "seed": args.seed,
            "commit": git_commit(),
            "command": "make model",
            "report": report,
        },
        "metrics": {
            "validation": report.get("validation", {}),
        },
    }
    if pooled:
        # v2 signature: state pairs fed back between segments, and the outputs to read.
        card["families"] = report.get("families", [])
        card["state"] = [{"in": "h0", "out": "hn"}, {"in": "c0", "out": "cn"},
                         {"in": "p0", "out": "pn"}]
        card["outputs"] = ["probs", "family_probs"]
        card["threshold_rule"] = report.get("threshold_rule")
        if report.get("calibration_pool"):
            card["calibration_pool"] = report["calibration_pool"]
        card["metrics"]["per_family_validation"] = report.get("validation", {}).get("per_family", {})
        card["training"]["command"] = args.command
    with open(card_path, "w", encoding="utf-8") as f:
        json.dump(card, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"wrote {card_path}: thresholds {card['thresholds']}")


if __name__ == "__main__":
    main()
