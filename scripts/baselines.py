#!/usr/bin/python3
"""Baselines: the yardstick the LSTM is measured against (`make baselines`).

    /usr/bin/python3 scripts/baselines.py [--corpus DIR] [--tokenizer FILE] [--out build/baselines]
        [--real-eval DIR] [--lstm-model DIR ...] [--lstm-results FILE.json ...] [--no-lstm]

1. Corpus: generated exactly as scripts/make-model.sh does (`gen.py --out build/baselines/corpus
   --seed 1 --min-calls 36000 --only corpus/sets/v0.6-hard10.txt`), unless --corpus DIR names an already generated one (its
   calls.jsonl). Corpus calls and every real-eval file are tokenized with the Go tokenizer of the
   shipped model (`bin/callwatch tokenize --tokenizer models/ko-vishing-lstm/tokenizer.json`),
   or --tokenizer FILE, with the text normalizer its bundle's card.json names (text_normalizer).
2. Split by `group` (base dialogue): 15% of each class's groups go to validation (seeded shuffle
   of the sorted group names, so deterministic); no base dialogue is on both sides.
3. Three baselines, trained on the train split only:
   - ids-lr:  TF-IDF (sublinear tf, L2) on token-id 1-3-grams (ids joined as words) + logistic
              regression (C 1, class-balanced, liblinear);
   - char-lr: TF-IDF (sublinear tf, L2) on character 1-3-grams, analyzer 'char_wb' (n-grams
              inside words, padded with a space: STT spacing is unreliable, and a merged or split
              word then changes only the grams at its edges) + the same logistic regression;
   - ids-lr-stream: the same token-id 1-3-grams and logistic regression, but features a fixed
              streaming state can carry: raw count x idf, divided by sqrt(token count) (the
              LSTM's --pool-norm sqrt). No sublinear tf and no L2 norm: both need every n-gram's
              own count, which grows with the call. A diagnostic row: what a linear model
              reaches when it has to stream as the LSTM does;
   - keywords: 33 finance / police / scam keywords (KEYWORDS, chosen from DESIGN.md's domain
              notes), score = substring hits per 100 non-space characters; no training.
4. Thresholds, chosen on the synthetic VALIDATION split only, never on real calls:
   - primary ("val-f1"): the score threshold that maximizes F1 on the validation calls;
   - secondary ("val-fpr5", the LSTM's `suspicious` rule without its 0.5 floor): the lowest
     threshold with FPR <= 5% on validation normals.
5. Per real-eval file (never pooled): ROC-AUC and precision / recall / F1 / FPR at each
   threshold, as markdown tables, and build/baselines/results.json. The LSTM rows come from
   `bin/callwatch eval --model DIR --data FILE` (its own `suspicious` threshold), for the shipped
   bundle and every --lstm-model DIR, and from --lstm-results files:
   {"name": ..., "files": {"<file>": {"roc_auc", "precision", "recall", "f1", "fpr"}}}
   where <file> is the real-eval file name (with or without .jsonl).

The real-eval files are evaluation only: nothing here trains or chooses anything on them.

From Python (e.g. a learning curve): `fit_baselines(texts, ids, labels)` returns a `Baselines`
whose `.scores(texts, ids)` gives every model's scores; `calibrate(...)` picks thresholds on a
validation set and `metrics(...)` computes the per-file figures.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = "/usr/bin/python3"
DEFAULT_MODEL = "models/ko-vishing-lstm"
DEFAULT_REAL_EVAL = "/work/shared/data/real-eval"
VAL_FRAC = 0.15
# make-model.sh's REGISTER_SHIFT: the share of generated calls moved one speech level (gen.py --register-shift).
REGISTER_SHIFT = 0.0
SPLIT_SEED = 1

# 33 keywords of the scam families in DESIGN.md ("The domain"): agencies, accounts and money
# movement, loan fraud, app / credential theft. Counted as substrings (no reliable spacing), so a
# longer keyword also counts its parts (대포통장 is also 통장).
KEYWORDS: tuple[str, ...] = (
    "계좌", "검찰", "수사", "대출", "이체", "안전", "금융감독원", "명의", "송금", "통장",
    "경찰", "사건", "연루", "피의자", "범죄", "대포통장", "현금", "인출", "저금리", "대환",
    "상환", "보안", "앱", "설치", "원격", "검사", "개인정보", "유출", "도용", "카드",
    "비밀번호", "인증번호", "금감원",
)
assert len(KEYWORDS) == 33 and len(set(KEYWORDS)) == 33

MODELS: tuple[str, ...] = ("ids-lr", "ids-lr-stream", "char-lr", "keywords")
RULES: dict[str, str] = {
    "val-f1": "threshold maximizing F1 on the synthetic validation split",
    "val-fpr5": "lowest threshold with FPR <= 5% on synthetic validation normals",
}


# ---- models ----------------------------------------------------------------------------------

def ids_doc(ids: Sequence[int]) -> str:
    return " ".join(str(i) for i in ids)


def keyword_score(text: str, keywords: Sequence[str] = KEYWORDS) -> float:
    """Keyword substring hits per 100 non-space characters."""
    n = sum(1 for c in text if not c.isspace())
    if n == 0:
        return 0.0
    return 100.0 * sum(text.count(k) for k in keywords) / n


def _lr(seed: int) -> LogisticRegression:
    return LogisticRegression(C=1.0, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=seed)


def _ids_pipeline(seed: int) -> Pipeline:
    vec = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False, ngram_range=(1, 3),
                          sublinear_tf=True, norm="l2", min_df=2, dtype=np.float32)
    return make_pipeline(vec, _lr(seed))


def _char_pipeline(seed: int) -> Pipeline:
    vec = TfidfVectorizer(analyzer="char_wb", lowercase=False, ngram_range=(1, 3),
                          sublinear_tf=True, norm="l2", min_df=2, dtype=np.float32)
    return make_pipeline(vec, _lr(seed))


class StreamIdsLR:
    """ids-lr-stream: a linear model on what a fixed-size streaming state can hold. Its score is
    sum_t w[gram_t] / sqrt(n) + b over the 1-3-grams ending at each token, which a running sum and
    a token count carry exactly; the TF-IDF of ids-lr (1 + log tf per n-gram, L2 over all of them)
    cannot be updated without keeping every n-gram's count."""

    def __init__(self, seed: int) -> None:
        self.vec = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False, ngram_range=(1, 3),
                                   sublinear_tf=False, norm=None, min_df=2, dtype=np.float32)
        self.lr = _lr(seed)

    def _x(self, docs: Sequence[str], fit: bool = False) -> Any:
        x = self.vec.fit_transform(docs) if fit else self.vec.transform(docs)
        n = np.array([max(len(d.split()), 1) for d in docs], dtype=np.float64)
        return sp.diags(1.0 / np.sqrt(n)) @ x

    def fit(self, docs: Sequence[str], y: Any) -> "StreamIdsLR":
        self.lr.fit(self._x(docs, fit=True), y)
        return self

    def predict_proba(self, docs: Sequence[str]) -> np.ndarray:
        return self.lr.predict_proba(self._x(docs))


@dataclass
class Baselines:
    ids_lr: Pipeline
    char_lr: Pipeline
    ids_lr_stream: StreamIdsLR | None = None
    keywords: tuple[str, ...] = KEYWORDS
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)  # rule -> model -> t

    def scores(self, texts: Sequence[str], ids: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """P(phishing) for the LR models (NaN for ids-lr-stream when it was not fitted), keyword
        density for the rule."""
        if len(texts) != len(ids):
            raise ValueError(f"{len(texts)} texts but {len(ids)} id lists")
        docs = [ids_doc(x) for x in ids]
        return {
            "ids-lr": self.ids_lr.predict_proba(docs)[:, 1],
            "ids-lr-stream": (self.ids_lr_stream.predict_proba(docs)[:, 1] if self.ids_lr_stream is not None
                              else np.full(len(docs), np.nan)),
            "char-lr": self.char_lr.predict_proba(list(texts))[:, 1],
            "keywords": np.array([keyword_score(t, self.keywords) for t in texts], dtype=np.float64),
        }

    def calibrate(self, texts: Sequence[str], ids: Sequence[Sequence[int]], labels: Sequence[int]) -> dict[str, dict[str, float]]:
        """Sets self.thresholds from a validation set (both rules) and returns them."""
        y = np.asarray(labels, dtype=int)
        sc = self.scores(texts, ids)
        fitted = [m for m in MODELS if not np.isnan(sc[m]).any()]  # ids-lr-stream may be left out
        self.thresholds = {
            "val-f1": {m: threshold_max_f1(sc[m], y) for m in fitted},
            "val-fpr5": {m: threshold_at_fpr(sc[m], y, 0.05) for m in fitted},
        }
        return self.thresholds


def fit_baselines(texts: Sequence[str], ids: Sequence[Sequence[int]], labels: Sequence[int], seed: int = 1,
                  stream_row: bool = True) -> Baselines:
    """Fits the LR models on training calls (labels: 1 phishing, 0 normal); stream_row False leaves
    out ids-lr-stream (its scores are then NaN)."""
    y = np.asarray(labels, dtype=int)
    if len(texts) != len(ids) or len(texts) != len(y):
        raise ValueError("texts, ids and labels differ in length")
    if set(np.unique(y).tolist()) != {0, 1}:
        raise ValueError("training labels need both classes (1 phishing, 0 normal)")
    docs = [ids_doc(x) for x in ids]
    ids_lr = _ids_pipeline(seed).fit(docs, y)
    stream = StreamIdsLR(seed).fit(docs, y) if stream_row else None
    char_lr = _char_pipeline(seed).fit(list(texts), y)
    return Baselines(ids_lr=ids_lr, char_lr=char_lr, ids_lr_stream=stream)


# ---- thresholds and metrics ------------------------------------------------------------------

def threshold_max_f1(scores: np.ndarray, y: np.ndarray) -> float:
    """Score threshold t (predict phishing when score >= t) with the highest F1; ties: the higher t."""
    order = np.argsort(-scores, kind="stable")
    s, yy = scores[order], y[order]
    tp = np.cumsum(yy)
    fp = np.cumsum(1 - yy)
    last = np.r_[s[1:] != s[:-1], True]  # cut only between distinct scores
    pos = int(yy.sum())
    f1 = 2 * tp / (tp + fp + pos)
    f1 = np.where(last, f1, -1.0)
    best = float(f1.max())
    i = int(np.flatnonzero(f1 == best)[0])  # first = highest threshold among the best
    return float(s[i])


def threshold_at_fpr(scores: np.ndarray, y: np.ndarray, max_fpr: float) -> float:
    """Lowest threshold t (a score) with FPR(score >= t) <= max_fpr on the normals (label 0)."""
    neg = np.sort(scores[y == 0])
    allowed = math.floor(max_fpr * len(neg) + 1e-9)  # normals allowed at or above t
    cands = np.unique(scores)  # ascending
    above = len(neg) - np.searchsorted(neg, cands, side="left")  # normals >= each candidate
    ok = np.flatnonzero(above <= allowed)
    if len(ok) == 0:  # ties at the top score: flag nothing
        return float(np.nextafter(cands[-1], np.inf))
    return float(cands[ok[0]])


def metrics(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = scores >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else float("nan")
    return {"roc_auc": auc, "threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1,
            "fpr": fp / (fp + tn) if fp + tn else 0.0, "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn}}


# ---- data ------------------------------------------------------------------------------------

@dataclass
class Record:
    id: str
    text: str
    label: int
    ids: list[int]
    group: str = ""


def label_int(s: str) -> int:
    if s == "phishing":
        return 1
    if s == "normal":
        return 0
    raise ValueError(f"label {s!r} (want phishing or normal)")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def normalizer_of(tokenizer: Path) -> str:
    """The text normalizer of the bundle a tokenizer.json sits in (card.json text_normalizer), so
    the baselines see the ids the LSTM sees; "" beside no card."""
    card = tokenizer.parent / "card.json"
    if not card.is_file():
        return ""
    return str(json.loads(card.read_text(encoding="utf-8")).get("text_normalizer", ""))


def tokenize(bin_path: Path, tokenizer: Path, src: Path, dst: Path) -> None:
    with dst.open("w", encoding="utf-8") as out:
        subprocess.run([str(bin_path), "tokenize", "--tokenizer", str(tokenizer), "--normalizer",
                        normalizer_of(tokenizer), "--input", str(src), "--format", "jsonl"],
                       check=True, stdout=out, cwd=REPO)


def load_records(src: Path, tokenized: Path) -> list[Record]:
    rows = read_jsonl(src)
    toks = read_jsonl(tokenized)
    if len(rows) != len(toks):
        raise SystemExit(f"{tokenized}: {len(toks)} tokenized rows for {len(rows)} records in {src}")
    out = []
    for r, t in zip(rows, toks):
        if str(r["id"]) != str(t["id"]):
            raise SystemExit(f"{tokenized}: id {t['id']!r} where {src} has {r['id']!r}")
        out.append(Record(id=str(r["id"]), text=r["text"], label=label_int(r["label"]), ids=list(t["ids"]),
                          group=str(r.get("group", r["id"]))))
    return out


def split_by_group(recs: Sequence[Record], val_frac: float = VAL_FRAC, seed: int = SPLIT_SEED) -> tuple[list[Record], list[Record]]:
    """val_frac of each class's groups (at least one) in validation; deterministic for a seed."""
    by_label: dict[int, set[str]] = {}
    for r in recs:
        by_label.setdefault(r.label, set()).add(r.group)
    rng = random.Random(seed)
    val: set[str] = set()
    for lab in sorted(by_label):
        gs = sorted(by_label[lab])
        rng.shuffle(gs)
        val.update(gs[:max(1, round(len(gs) * val_frac))])
    return [r for r in recs if r.group not in val], [r for r in recs if r.group in val]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- LSTM rows -------------------------------------------------------------------------------

def lstm_eval(bin_path: Path, model: Path, data: Path) -> dict[str, Any]:
    res = subprocess.run([str(bin_path), "eval", "--model", str(model), "--data", str(data)],
                         capture_output=True, text=True, cwd=REPO)
    if res.returncode not in (0, 1):  # 1: some records failed, counted in the report
        raise SystemExit(f"callwatch eval failed ({res.returncode}): {res.stderr.strip()}")
    j = json.loads(res.stdout)
    s = j["at"]["suspicious"]
    return {"roc_auc": j["roc_auc"], "threshold": s["threshold"], "precision": s["precision"],
            "recall": s["recall"], "f1": s["f1"], "fpr": s["fpr"], "confusion": s.get("confusion")}


def load_lstm_results(path: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    j = json.loads(path.read_text(encoding="utf-8"))
    files = {}
    for k, v in j["files"].items():
        name = k[:-len(".jsonl")] if k.endswith(".jsonl") else k
        files[Path(name).name] = {key: v.get(key) for key in ("roc_auc", "threshold", "precision", "recall", "f1", "fpr")}
    return str(j.get("name", path.stem)), files


# ---- report ----------------------------------------------------------------------------------

def _f(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{nd}f}"


def markdown_table(files: dict[str, dict[str, dict[str, Any]]], sizes: dict[str, tuple[int, int]],
                   rule: str) -> str:
    lines = ["| file (phishing / normal) | model | threshold | ROC-AUC | precision | recall | F1 | FPR |",
             "|---|---|---|---|---|---|---|---|"]
    for fname, rows in files.items():
        p, n = sizes.get(fname, (0, 0))
        for model, m in rows.items():
            r = m.get(rule, m) if model in MODELS else m
            t = r.get("threshold")
            tcell = f"{_f(t, 3)} ({rule})" if model in MODELS else (f"{_f(t, 3)} (suspicious)" if t is not None else "suspicious")
            lines.append(f"| {fname} ({p} / {n}) | {model} | {tcell} | {_f(r.get('roc_auc'))} | {_f(r.get('precision'))} | "
                         f"{_f(r.get('recall'))} | {_f(r.get('f1'))} | {_f(r.get('fpr'))} |")
    return "\n".join(lines)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, help="an already generated corpus directory (its calls.jsonl); default: generate one")
    ap.add_argument("--corpus-set", default="corpus/sets/v0.6-hard10.txt",
                    help="the named set of base dialogues make-model.sh trains the shipped model on (its CORPUS_SET); "
                         "'' for all of corpus/base")
    ap.add_argument("--tokenizer", type=Path, default=REPO / DEFAULT_MODEL / "tokenizer.json")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "baselines")
    ap.add_argument("--real-eval", type=Path, default=Path(os.environ.get("REAL_EVAL_DIR", DEFAULT_REAL_EVAL)))
    ap.add_argument("--lstm-model", type=Path, action="append", default=[],
                    help=f"an LSTM bundle to add (repeatable); {DEFAULT_MODEL} is always included unless --no-lstm")
    ap.add_argument("--lstm-results", type=Path, action="append", default=[], help="precomputed per-file LSTM figures (repeatable)")
    ap.add_argument("--no-lstm", action="store_true", help="skip the shipped bundle's row")
    ap.add_argument("--bin", type=Path, default=REPO / "bin" / "callwatch")
    ap.add_argument("--seed", type=int, default=1, help="corpus seed (as make-model.sh) and LR seed")
    ap.add_argument("--min-calls", type=int, default=36000)
    ap.add_argument("--register-shift", type=float, default=REGISTER_SHIFT,
                    help="gen.py --register-shift (make-model.sh's REGISTER_SHIFT)")
    ap.add_argument("--val-frac", type=float, default=VAL_FRAC)
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    if not a.bin.exists():
        log(f"building {a.bin}")
        a.bin.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(a.bin), "./cmd/callwatch"], check=True, cwd=REPO)

    corpus: Path = a.corpus if a.corpus else out / "corpus"
    if not a.corpus:
        log(f"== corpus → {corpus} (seed {a.seed}, min-calls {a.min_calls}, as scripts/make-model.sh)")
        corpus.mkdir(parents=True, exist_ok=True)
        glog = out / "corpus.log"
        with glog.open("w", encoding="utf-8") as lf:
            only = ["--only", a.corpus_set] if a.corpus_set else []
            rc = subprocess.run([PY, str(REPO / "scripts/corpus/gen.py"), "--out", str(corpus), "--seed", str(a.seed),
                                 "--min-calls", str(a.min_calls), *only, "--register-shift", str(a.register_shift)],
                                cwd=REPO, stdout=lf,
                                stderr=subprocess.STDOUT).returncode
        if rc != 0:
            tail = glog.read_text(encoding="utf-8").splitlines()[-15:]
            raise SystemExit("corpus generation failed (gen.py exit %d), last lines of %s:\n%s" % (rc, glog, "\n".join(tail)))
    calls = corpus / "calls.jsonl"
    if not calls.is_file():
        raise SystemExit(f"no {calls}")
    log(f"== tokenize with {a.tokenizer}")
    tokdir = out / "tokenized"
    tokdir.mkdir(exist_ok=True)
    tokenize(a.bin, a.tokenizer, calls, tokdir / "corpus.jsonl")
    recs = load_records(calls, tokdir / "corpus.jsonl")
    real_files = sorted(a.real_eval.glob("*.jsonl")) if a.real_eval.is_dir() else []
    if not real_files:
        log(f"no real-eval files in {a.real_eval}: validation figures only")
    real: dict[str, list[Record]] = {}
    for f in real_files:
        tokenize(a.bin, a.tokenizer, f, tokdir / f"real-{f.name}")
        real[f.stem] = load_records(f, tokdir / f"real-{f.name}")

    train, val = split_by_group(recs, a.val_frac, SPLIT_SEED)
    log(f"== split by group: train {len(train)} calls ({len({r.group for r in train})} groups), "
        f"validation {len(val)} ({len({r.group for r in val})} groups)")
    t1 = time.monotonic()
    bl = fit_baselines([r.text for r in train], [r.ids for r in train], [r.label for r in train], seed=a.seed)
    log(f"== fitted ids-lr, ids-lr-stream and char-lr in {time.monotonic() - t1:.0f}s")
    yv = np.array([r.label for r in val])
    thr = bl.calibrate([r.text for r in val], [r.ids for r in val], yv)
    vsc = bl.scores([r.text for r in val], [r.ids for r in val])
    validation = {m: {rule: metrics(vsc[m], yv, thr[rule][m]) for rule in RULES} for m in MODELS}

    files: dict[str, dict[str, dict[str, Any]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for name, rs in real.items():
        y = np.array([r.label for r in rs])
        sizes[name] = (int(y.sum()), int(len(y) - y.sum()))
        sc = bl.scores([r.text for r in rs], [r.ids for r in rs])
        files[name] = {m: {rule: metrics(sc[m], y, thr[rule][m]) for rule in RULES} for m in MODELS}

    lstm_models = ([] if a.no_lstm else [REPO / DEFAULT_MODEL]) + list(a.lstm_model)
    lstm_names: list[str] = []
    for md in lstm_models:
        name = f"lstm:{md.name}" if md.resolve() == (REPO / DEFAULT_MODEL).resolve() else f"lstm:{md}"
        lstm_names.append(name)
        for f in real_files:
            log(f"== {name} on {f.name}")
            files[f.stem][name] = lstm_eval(a.bin, md, f)
    for rf in a.lstm_results:
        name, per = load_lstm_results(rf)
        name = f"lstm:{name}"
        lstm_names.append(name)
        for fname, m in per.items():
            if fname in files:
                files[fname][name] = m
            else:
                log(f"{rf}: no real-eval file {fname!r} here; ignored")

    result = {
        "command": "scripts/baselines.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "corpus": {"dir": str(corpus), "calls": len(recs), "groups": len({r.group for r in recs}),
                   "calls_sha256": sha256(calls), "seed": a.seed, "min_calls": a.min_calls},
        "tokenizer": {"path": str(a.tokenizer), "sha256": sha256(a.tokenizer)},
        "split": {"rule": f"{a.val_frac:.0%} of each class's groups (base dialogues) to validation, "
                          f"random.Random({SPLIT_SEED}) shuffle of sorted group names",
                  "train_calls": len(train), "train_groups": len({r.group for r in train}),
                  "val_calls": len(val), "val_groups": len({r.group for r in val})},
        "models": {
            "ids-lr": "TfidfVectorizer(word on token ids, ngram 1-3, sublinear_tf, l2, min_df 2) + "
                      "LogisticRegression(C 1, class_weight balanced, liblinear)",
            "ids-lr-stream": "TfidfVectorizer(word on token ids, ngram 1-3, raw tf, no norm, min_df 2) / sqrt(token count) + "
                             "LogisticRegression(C 1, class_weight balanced, liblinear): what a streaming state can carry",
            "char-lr": "TfidfVectorizer(char_wb, ngram 1-3, sublinear_tf, l2, min_df 2) + "
                       "LogisticRegression(C 1, class_weight balanced, liblinear)",
            "keywords": {"score": "keyword substring hits per 100 non-space characters", "keywords": list(KEYWORDS)},
            "lstm": "bin/callwatch eval --model DIR --data FILE: roc_auc and at.suspicious (the bundle's own threshold)",
        },
        "threshold_rules": RULES,
        "thresholds": thr,
        "validation": validation,
        "files": files,
        "lstm": lstm_names,
        "seconds": round(time.monotonic() - t0, 1),
    }
    (out / "results.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    print(f"# Baselines vs LSTM on real calls (each file separately; thresholds from the synthetic validation split)\n")
    print(f"corpus {corpus} ({len(recs)} calls, {len({r.group for r in recs})} base dialogues), tokenizer {a.tokenizer}; "
          f"train {len(train)} / validation {len(val)} calls\n")
    print("Synthetic validation (held-out base dialogues):\n")
    print("| model | ROC-AUC | t (val-f1) | F1 | FPR | t (val-fpr5) | F1 | FPR |")
    print("|---|---|---|---|---|---|---|---|")
    for m in MODELS:
        v1, v2 = validation[m]["val-f1"], validation[m]["val-fpr5"]
        print(f"| {m} | {_f(v1['roc_auc'])} | {_f(v1['threshold'])} | {_f(v1['f1'])} | {_f(v1['fpr'])} | "
              f"{_f(v2['threshold'])} | {_f(v2['f1'])} | {_f(v2['fpr'])} |")
    if files:
        for rule in RULES:
            print(f"\nReal-eval files, baselines at {rule} ({RULES[rule]}); LSTM rows at the bundle's `suspicious`:\n")
            print(markdown_table(files, sizes, rule))
    print(f"\nwrote {out / 'results.json'} in {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
