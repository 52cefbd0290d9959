"""Shortcut checks on a held-out split grouped by base dialogue (stdlib only).

If length or a bag of words separates held-out base dialogues too easily, the corpus teaches
something other than intent. These numbers are reported, not enforced.
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from typing import Callable, Iterable

SPLIT_SEED = 20240917
TEST_SHARE = 0.2
_TOKEN_STRIP = re.compile(r"[.,?!~…·\"'“”‘’()]")

Example = tuple[str, str, str]  # (group, label, text)


def split_groups(examples: list[Example], seed: int = SPLIT_SEED, test_share: float = TEST_SHARE) -> set[str]:
    """Test groups: test_share of the base dialogues of each class, fixed seed."""
    by_label: dict[str, set[str]] = defaultdict(set)
    for g, lab, _ in examples:
        by_label[lab].add(g)
    rng = random.Random(seed)
    test: set[str] = set()
    for lab in sorted(by_label):
        gs = sorted(by_label[lab])
        rng.shuffle(gs)
        test.update(gs[:max(1, round(len(gs) * test_share))])
    return test


def roc_auc(scores: list[float], positive: list[bool]) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    npos = sum(positive)
    nneg = len(positive) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    rsum = sum(r for r, p in zip(ranks, positive) if p)
    return (rsum - npos * (npos + 1) / 2) / (npos * nneg)


def _f1(pred: list[bool], gold: list[bool]) -> float:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _acc(pred: list[bool], gold: list[bool]) -> float:
    return sum(p == g for p, g in zip(pred, gold)) / max(1, len(gold))


def length_baseline(train: list[Example], test: list[Example]) -> dict[str, object]:
    """Best single threshold on character length, chosen on train, scored on test."""
    tl = [len(t) for _, _, t in train]
    ty = [lab == "phishing" for _, lab, _ in train]
    sign = 1.0 if roc_auc([float(x) for x in tl], ty) >= 0.5 else -1.0
    best = (-1.0, 0.0)
    for thr in sorted(set(tl)):
        acc = _acc([sign * x >= sign * thr for x in tl], ty)
        if acc > best[0]:
            best = (acc, float(thr))
    el = [len(t) for _, _, t in test]
    ey = [lab == "phishing" for _, lab, _ in test]
    pred = [sign * x >= sign * best[1] for x in el]
    auc = roc_auc([float(x) for x in el], ey)  # score = length: 0.5 is no signal either way
    return {"auc": auc, "auc_either_way": max(auc, 1 - auc),
            "auc_all_calls": roc_auc([float(len(t)) for _, _, t in train + test], ty + ey),
            "accuracy": _acc(pred, ey),
            "rule": f"phishing if length {'>=' if sign > 0 else '<='} {best[1]:g} (chosen on train)"}


def words(text: str) -> list[str]:
    return _TOKEN_STRIP.sub(" ", text).split()


def char_bigrams(text: str) -> list[str]:
    s = re.sub(r"\s+", "", _TOKEN_STRIP.sub("", text))
    return [s[i:i + 2] for i in range(len(s) - 1)]


def naive_bayes(train: list[Example], test: list[Example], feats: Callable[[str], list[str]]) -> dict[str, float]:
    """Multinomial NB, Laplace smoothing; score = log-odds of phishing."""
    counts = {"phishing": Counter[str](), "normal": Counter[str]()}
    docs = Counter[str]()
    for _, lab, t in train:
        counts[lab].update(feats(t))
        docs[lab] += 1
    vocab = set(counts["phishing"]) | set(counts["normal"])
    tot = {lab: sum(c.values()) + len(vocab) for lab, c in counts.items()}
    prior = math.log(docs["phishing"] / docs["normal"])
    lp = {w: math.log((counts["phishing"][w] + 1) / tot["phishing"]) - math.log((counts["normal"][w] + 1) / tot["normal"])
          for w in vocab}
    scores = [prior + sum(lp.get(w, 0.0) for w in feats(t)) for _, _, t in test]
    gold = [lab == "phishing" for _, lab, _ in test]
    pred = [s > 0 for s in scores]
    return {"auc": roc_auc(scores, gold), "f1": _f1(pred, gold), "accuracy": _acc(pred, gold)}


def skewed_tokens(train: Iterable[Example], k: int = 30, min_groups: int = 3) -> dict[str, list[dict[str, object]]]:
    """Tokens by log-odds of the share of base dialogues (groups) that contain them, per class."""
    groups: dict[str, set[str]] = defaultdict(set)
    glabel: dict[str, str] = {}
    for g, lab, t in train:
        groups[g].update(words(t))
        glabel[g] = lab
    n = Counter(glabel.values())
    df = {"phishing": Counter[str](), "normal": Counter[str]()}
    for g, toks in groups.items():
        df[glabel[g]].update(toks)
    rows = []
    for w in set(df["phishing"]) | set(df["normal"]):
        a, b = df["phishing"][w], df["normal"][w]
        if a + b < min_groups:
            continue
        lo = math.log((a + 0.5) / (n["phishing"] - a + 0.5)) - math.log((b + 0.5) / (n["normal"] - b + 0.5))
        rows.append({"token": w, "log_odds": round(lo, 3), "n_phishing": a, "n_normal": b})
    rows.sort(key=lambda r: (-abs(float(r["log_odds"])), str(r["token"])))  # type: ignore[arg-type]
    return {"phishing": [r for r in rows if float(r["log_odds"]) > 0][:k],  # type: ignore[arg-type]
            "normal": [r for r in rows if float(r["log_odds"]) < 0][:k]}  # type: ignore[arg-type]


def shortcut_checks(examples: list[Example]) -> dict[str, object]:
    groups: dict[str, set[str]] = defaultdict(set)
    for g, lab, _ in examples:
        groups[lab].add(g)
    if set(groups) != {"phishing", "normal"} or min(len(v) for v in groups.values()) < 5:
        return {"error": "need at least 5 base dialogues of each class, have "
                + ", ".join(f"{k}={len(v)}" for k, v in sorted(groups.items()))}
    test_groups = split_groups(examples)
    train = [e for e in examples if e[0] not in test_groups]
    test = [e for e in examples if e[0] in test_groups]
    return {
        "split_seed": SPLIT_SEED,
        "train_groups": len({e[0] for e in train}), "test_groups": len(test_groups),
        "train_calls": len(train), "test_calls": len(test),
        "length": length_baseline(train, test),
        "nb_words": naive_bayes(train, test, words),
        "nb_bigrams": naive_bayes(train, test, char_bigrams),
        "top_tokens": skewed_tokens(train),
    }
