#!/usr/bin/python3
"""Merges `callwatch eval` results (one JSON per real-eval file, plus optional
<name>.stream.json from `eval --stream`) into a bundle's card.json as "real_eval",
and prints a per-file summary table. Used by scripts/eval-real.sh.

  /usr/bin/python3 scripts/real_eval_card.py --card models/ko-vishing-lstm/card.json \
      --results build/real-eval/ko-vishing-lstm --command "..."
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Dict

LEVELS = ("suspicious", "dangerous", "0.5")
KEEP = ("threshold", "precision", "recall", "f1", "fpr", "confusion")


def summarize(ev: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "n_phishing": ev["phishing"], "n_normal": ev["normal"], "scored": ev["scored"],
        "failed": ev["failed"], "roc_auc": ev["roc_auc"],
        "at": {lvl: {k: ev["at"][lvl][k] for k in KEEP if k in ev["at"][lvl]}
               for lvl in LEVELS if lvl in ev.get("at", {})},
        "tokens_median_per_call": ev.get("tokens", {}).get("median_per_call"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--card", required=True)
    ap.add_argument("--results", required=True, help="directory of <file>.json and <file>.stream.json")
    ap.add_argument("--command", default="bash scripts/eval-real.sh")
    a = ap.parse_args()
    with open(a.card, encoding="utf-8") as f:
        card = json.load(f)
    files: Dict[str, Any] = {}
    model_sha = None
    for name in sorted(os.listdir(a.results)):
        if not name.endswith(".json") or name.endswith(".stream.json"):
            continue
        stem = name[:-len(".json")]
        with open(os.path.join(a.results, name), encoding="utf-8") as f:
            ev = json.load(f)
        model_sha = ev.get("model_sha256", model_sha)
        entry = summarize(ev)
        sp = os.path.join(a.results, stem + ".stream.json")
        if os.path.exists(sp):
            with open(sp, encoding="utf-8") as f:
                entry["stream"] = json.load(f).get("stream")
        files[stem] = entry
    if not files:
        raise SystemExit(f"no results in {a.results}")
    want = card.get("files", {}).get("model.onnx", {}).get("sha256")
    if model_sha and want and model_sha != want:
        raise SystemExit(f"results are for model {model_sha[:12]}, card pins {want[:12]}")
    card["real_eval"] = {
        "note": "Real STT transcripts, evaluation only (never trained on); per file, never pooled. "
                "aishield_whisper normals are bank/card/insurance call-centre calls: the hard-negative FPR.",
        "command": a.command,
        "thresholds": card.get("thresholds"),
        "files": files,
    }
    with open(a.card, "w", encoding="utf-8") as f:
        json.dump(card, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"{'file':28s} {'n+':>4s} {'n-':>5s} {'AUC':>6s} | susp P/R/F1/FPR        | dang P/R/F1/FPR        | stream ever-susp(normal) first-susp s")
    for stem, e in files.items():
        s, d = e["at"]["suspicious"], e["at"]["dangerous"]
        st = e.get("stream") or {}
        es = st.get("normal", {}).get("ever_suspicious_share", float("nan"))
        fs = st.get("phishing", {}).get("first_suspicious", {}).get("median_s", float("nan"))
        print(f"{stem:28s} {e['n_phishing']:4d} {e['n_normal']:5d} {e['roc_auc']:6.3f} | "
              f"{s['precision']:.2f}/{s['recall']:.2f}/{s['f1']:.2f}/{s['fpr']:.3f} | "
              f"{d['precision']:.2f}/{d['recall']:.2f}/{d['f1']:.2f}/{d['fpr']:.3f} | {es:.3f} {fs}")


if __name__ == "__main__":
    main()
