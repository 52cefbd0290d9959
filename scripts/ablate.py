#!/usr/bin/python3
"""Corpus ablation on the linear yardstick (issue 12): which base dialogues help or hurt transfer.

    /usr/bin/python3 scripts/ablate.py [--calls build/ablate/corpus/calls.jsonl] [--variants 4]
        [--out build/ablate] [--mode add|drop|filter] [--families a,b,...]

The token 1-3-gram TF-IDF + LR of scripts/baselines.py is trained on subsets of the base
dialogues (all variants of a dialogue go together) and scored per real-eval file (never pooled):

- `add`:    the reference set (corpus/sets/v0.4-566.txt) plus the dialogues of ONE family that are
            not in it, for each family; the delta against the reference set alone says whether that
            family's newer dialogues help or hurt.
- `drop`:   all dialogues minus ONE family's newer dialogues, for each family.
- `filter`: all dialogues minus the normal dialogues whose text contains a scam word (the
            KEYWORDS_HARD list below), testing the hypothesis that legitimate calls that talk
            about fraud, police and prosecutors teach the model that those words are normal.

The real-eval files are evaluation only: this is a diagnostic of the corpus, and its figures are
reported as such; thresholds and training choices of the shipped model never come from it.
One generated corpus is reused for every subset (`--variants` per dialogue, seed 1), so the
deltas compare dialogue sets, not generator draws.
"""
from __future__ import annotations

import argparse
import json
import random
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baselines as bl  # noqa: E402

REPO = bl.REPO
PY = bl.PY

# Words that make a legitimate call "talk about" a scam: the agencies and methods of the
# scripts. A normal dialogue containing any of them is a hard negative.
KEYWORDS_HARD: tuple[str, ...] = (
    "보이스피싱", "피싱", "사기", "검찰", "검사님", "검사실", "수사", "경찰", "금감원", "금융감독원", "명의", "도용",
    "안전계좌", "대포통장", "연루", "피의자", "범죄", "원격", "악성",
)


def parse_dialogues(base: Path) -> list:
    """corpus/base's dialogues (scripts/corpus/basefmt.py); exits if it does not parse."""
    sys.path.insert(0, str(REPO / "scripts" / "corpus"))
    from basefmt import parse_base  # noqa: E402
    dialogues, issues = parse_base(base)
    if issues:
        raise SystemExit("corpus/base does not parse: " + "; ".join(map(str, issues[:3])))
    return dialogues


def hard_normals(base: Path, dialogues: list | None = None) -> list[str]:
    """Ids of the normal base dialogues whose raw text (every turn, every slot alternative) holds
    a word of KEYWORDS_HARD, sorted."""
    if dialogues is None:
        dialogues = parse_dialogues(base)
    return sorted(d.id for d in dialogues
                  if d.label == "normal" and any(k in t.raw for t in d.turns for k in KEYWORDS_HARD))


def write_set(base: Path, out: Path, share: float, seed: int = 1) -> None:
    """A corpus set: every base dialogue except the hard normals, of which a seeded share stays."""
    dialogues = parse_dialogues(base)
    hard = hard_normals(base, dialogues)
    rng = random.Random(seed)
    hs = list(hard)
    rng.shuffle(hs)
    keep_hard = set(hs[:round(len(hs) * share)])
    drop = set(hard) - keep_hard
    ids = sorted(d.id for d in dialogues if d.id not in drop)
    n_norm = sum(1 for d in dialogues if d.label == "normal" and d.id not in drop)
    head = [
        f"# Every base dialogue of corpus/base except {len(drop)} of its {len(hard)} hard normals: legitimate",
        "# calls whose text holds a scam word (scripts/ablate.py KEYWORDS_HARD: 보이스피싱, 사기, 검찰,",
        f"# 경찰, 명의, 안전계좌, ...). {len(keep_hard)} of them ({share:.0%}, random.Random({seed})) stay, so hard",
        f"# negatives are {len(keep_hard)} of the set's {n_norm} normals instead of {len(hard)} of "
        f"{sum(1 for d in dialogues if d.label == 'normal')}.",
        "# Why: scripts/README.md \"Round 5\" (the per-file ablation on the linear yardstick).",
        f"# Written by: /usr/bin/python3 scripts/ablate.py --write-set {out} --hard-share {share}",
    ]
    out.write_text("\n".join(head + ids) + "\n", encoding="utf-8")
    print(f"{out}: {len(ids)} dialogues ({len(drop)} hard normals left out, {len(keep_hard)} kept)")
    held = out.with_name(out.stem + "-calibration.txt")
    held.write_text("\n".join([
        f"# The {len(drop)} hard normals that {out.name} leaves out of training: legitimate calls that talk",
        "# about scams (police, prosecutors, fraud warnings). Not trained on; make-model.sh sets the",
        "# alert thresholds on calls generated from them (callwatch calibrate), so the most alarming",
        "# legitimate calls the project has written decide how high the bar is.",
        f"# Written by: /usr/bin/python3 scripts/ablate.py --write-set {out} --hard-share {share}",
    ] + sorted(drop)) + "\n", encoding="utf-8")
    print(f"{held}: {len(drop)} held-out hard normals")


def extend_set(base: Path, old: Path, out: Path) -> None:
    """A corpus set that grows `old` by the base dialogues written since: every dialogue in neither
    `old` nor its calibration file joins the new set, except new hard normals, which join the new
    calibration file. `old`'s own choice of kept hard normals stays as it was, so the new set differs
    from the old by the new dialogues only (write_set would reshuffle which hard normals stay)."""
    dialogues = parse_dialogues(base)
    old_cal = old.with_name(old.stem + "-calibration.txt")
    kept, held = read_set(old), read_set(old_cal)
    missing = (kept | held) - {d.id for d in dialogues}
    if missing:
        raise SystemExit(f"{old}: {len(missing)} ids no longer in corpus/base, e.g. {sorted(missing)[:3]}")
    hard = set(hard_normals(base, dialogues))
    new = [d.id for d in dialogues if d.id not in kept and d.id not in held]
    new_hard = sorted(i for i in new if i in hard)
    ids = sorted(kept | (set(new) - set(new_hard)))
    cal = sorted(held | set(new_hard))
    cmd = f"# Written by: /usr/bin/python3 scripts/ablate.py --extend-set {old} --write-set {out}"
    out.write_text("\n".join([
        f"# {old.name} plus the {len(new) - len(new_hard)} base dialogues written after it; the {len(new_hard)} new",
        "# hard normals among them (KEYWORDS_HARD) join the calibration file instead, as in the old set.",
        cmd,
    ] + ids) + "\n", encoding="utf-8")
    cal_out = out.with_name(out.stem + "-calibration.txt")
    cal_out.write_text("\n".join([
        f"# The {len(cal)} hard normals that {out.name} leaves out of training: {old_cal.name}'s {len(held)}",
        f"# plus {len(new_hard)} new ones. make-model.sh sets the alert thresholds on calls generated from them.",
        cmd,
    ] + cal) + "\n", encoding="utf-8")
    print(f"{out}: {len(ids)} dialogues ({len(new) - len(new_hard)} new); {cal_out}: {len(cal)} ({len(new_hard)} new)")


def read_set(path: Path) -> set[str]:
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.add(line)
    return out


def fit_score(train: Sequence[bl.Record], real: dict[str, list[bl.Record]]) -> dict[str, float]:
    y = np.array([r.label for r in train])
    pipe = bl._ids_pipeline(1).fit([bl.ids_doc(r.ids) for r in train], y)
    out = {}
    for name, rs in real.items():
        yr = np.array([r.label for r in rs])
        s = pipe.predict_proba([bl.ids_doc(r.ids) for r in rs])[:, 1]
        out[name] = float(roc_auc_score(yr, s))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "ablate")
    ap.add_argument("--calls", type=Path, help="an already generated calls.jsonl of all base dialogues")
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--mode", choices=("add", "drop", "filter"), default="add")
    ap.add_argument("--families", default="", help="comma-separated families (default: all)")
    ap.add_argument("--without-hard", action="store_true",
                    help="add/drop: start from the corpus without its hard normals (filter mode's best row)")
    ap.add_argument("--ref-set", type=Path, default=REPO / "corpus" / "sets" / "v0.4-566.txt")
    ap.add_argument("--tokenizer", type=Path, default=REPO / bl.DEFAULT_MODEL / "tokenizer.json")
    ap.add_argument("--real-eval", type=Path, default=Path(os.environ.get("REAL_EVAL_DIR", bl.DEFAULT_REAL_EVAL)))
    ap.add_argument("--bin", type=Path, default=REPO / "bin" / "callwatch")
    ap.add_argument("--write-set", type=Path, help="write a corpus set without the hard normals and exit")
    ap.add_argument("--hard-share", type=float, default=0.0, help="--write-set: share of the hard normals kept")
    ap.add_argument("--extend-set", type=Path,
                    help="with --write-set: grow this set by the dialogues written since (new hard normals go "
                         "to the calibration file) instead of drawing the hard normals again")
    a = ap.parse_args(argv)
    if a.extend_set and not a.write_set:
        ap.error("--extend-set needs --write-set NEW (the set to write)")
    if a.write_set and a.extend_set:
        extend_set(REPO / "corpus" / "base", a.extend_set, a.write_set)
        return 0
    if a.write_set:
        write_set(REPO / "corpus" / "base", a.write_set, a.hard_share)
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    calls = a.calls
    if calls is None:
        cdir = a.out / "corpus"
        calls = cdir / "calls.jsonl"
        if not calls.exists():
            bl.log(f"== generating all base dialogues × {a.variants} → {cdir}")
            subprocess.run([PY, str(REPO / "scripts/corpus/gen.py"), "--out", str(cdir), "--seed", "1",
                            "--variants", str(a.variants)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    tok = a.out / (calls.stem + ".tok.jsonl")
    if not tok.exists() or tok.stat().st_mtime < calls.stat().st_mtime:
        bl.tokenize(a.bin, a.tokenizer, calls, tok)
    recs = bl.load_records(calls, tok)
    fam = {r["group"]: r.get("family", "") for r in bl.read_jsonl(calls)}
    texts: dict[str, str] = {}
    for r in recs:
        texts.setdefault(r.group, r.text)
    real: dict[str, list[bl.Record]] = {}
    for f in sorted(a.real_eval.glob("*.jsonl")):
        t = a.out / f"real-{f.name}"
        if not t.exists():
            bl.tokenize(a.bin, a.tokenizer, f, t)
        real[f.stem] = bl.load_records(f, t)
    ref = read_set(a.ref_set)
    groups = sorted({r.group for r in recs})
    families = sorted({fam[g] for g in groups})
    if a.families:
        families = [f for f in a.families.split(",") if f]
    label_of = {r.group: r.label for r in recs}
    results = []

    def run(name: str, keep: set[str]) -> None:
        t0 = time.monotonic()
        tr = [r for r in recs if r.group in keep]
        auc = fit_score(tr, real)
        n_ph = sum(1 for g in keep if label_of[g] == 1)
        row = {"name": name, "dialogues": len(keep), "phishing": n_ph, "normal": len(keep) - n_ph,
               "calls": len(tr), "auc": auc}
        results.append(row)
        bl.log(f"{name:40s} {len(keep):5d} dlg  " + "  ".join(f"{k[:8]} {v:.3f}" for k, v in auc.items())
               + f"  ({time.monotonic() - t0:.0f}s)")
        (a.out / f"results-{a.mode}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))

    hard = {g for g in groups if label_of[g] == 0 and any(k in texts[g] for k in KEYWORDS_HARD)}
    all_g = set(groups) - (hard if a.without_hard else set())
    ref_g = {g for g in all_g if g in ref}
    if a.mode == "add":
        run("reference set", ref_g)
        for f in families:
            new = {g for g in all_g if fam[g] == f and g not in ref}
            if new:
                run(f"+ {f} ({'N' if label_of[next(iter(new))] == 0 else 'P'} {len(new)})", ref_g | new)
    elif a.mode == "drop":
        run("all", all_g)
        for f in families:
            new = {g for g in all_g if fam[g] == f and g not in ref}
            if new:
                run(f"- {f} ({'N' if label_of[next(iter(new))] == 0 else 'P'} {len(new)})", all_g - new)
    else:
        run("all", all_g)
        hard_new = {g for g in hard if g not in ref}
        bl.log(f"normal dialogues with a scam word: {len(hard)} ({len(hard_new)} outside the reference set) "
               f"of {sum(1 for g in groups if label_of[g] == 0)}")
        run("all - hard normals (new)", all_g - hard_new)
        run("all - hard normals (all)", all_g - hard)
        for share in (0.1, 0.25, 0.5):
            # a realistic share of hard negatives: a seeded sample of them stays in
            hs = sorted(hard)
            random.Random(1).shuffle(hs)
            keep = set(hs[:round(len(hs) * share)])
            run(f"all - hard normals + {share:.0%} of them", (all_g - hard) | keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
