#!/usr/bin/python3
"""The linear teacher: TF-IDF + logistic regression on token-id 1-3-grams.

Fit on the training split of the synthetic corpus only (train.py --distill);
its P(phishing) on corpus calls and on augmented calls (crops, concatenations,
token dropout) is the soft target the LSTM is distilled towards. The same
model is the reference baseline of realeval_torch.py.

Token ids are joined as space-separated words, so the vectorizer's n-grams are
id n-grams (the ids come from the project's own Go tokenizer).
"""

from __future__ import annotations

from typing import Iterable, List, Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def as_text(ids: Sequence[int]) -> str:
    return " ".join(str(int(i)) for i in ids)


class LRTeacher:
    def __init__(self, ngram_max: int = 3, min_df: int = 2, C: float = 10.0) -> None:
        self.vec = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False,
                                   ngram_range=(1, ngram_max), sublinear_tf=True, min_df=min_df,
                                   dtype=np.float32)
        self.lr = LogisticRegression(C=C, max_iter=2000, solver="liblinear")
        self.params = {"ngram_max": ngram_max, "min_df": min_df, "C": C,
                       "features": "TF-IDF (sublinear tf, l2) of token-id n-grams"}

    def fit(self, seqs: Iterable[Sequence[int]], labels: Sequence[int]) -> "LRTeacher":
        X = self.vec.fit_transform([as_text(s) for s in seqs])
        self.lr.fit(X, np.asarray(labels))
        return self

    def predict(self, seqs: Iterable[Sequence[int]]) -> np.ndarray:
        """P(phishing) per sequence."""
        texts: List[str] = [as_text(s) for s in seqs]
        if not texts:
            return np.zeros(0)
        return self.lr.predict_proba(self.vec.transform(texts))[:, 1]


def load_pieces(tokenizer_json: str) -> List[str]:
    """id -> WordPiece string of a callwatch tokenizer.json (the model's vocab)."""
    import json
    with open(tokenizer_json, encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    pieces = [""] * (max(vocab.values()) + 1)
    for p, i in vocab.items():
        pieces[i] = p
    return pieces


def decode(ids: Sequence[int], pieces: Sequence[str]) -> str:
    """The text a WordPiece id sequence spells: '##' pieces join the previous word, the
    others start a new one; [UNK] becomes U+25A1 (one character), other specials vanish."""
    out: List[str] = []
    for i in ids:
        p = pieces[int(i)] if 0 <= int(i) < len(pieces) else "[UNK]"
        if p.startswith("##"):
            out.append(p[2:])
        elif p == "[UNK]":
            out.append(" \u25a1")
        elif p.startswith("[") and p.endswith("]"):
            continue
        else:
            out.append(" " + p)
    return "".join(out).strip()


class CharTeacher:
    """The character baseline as teacher (train.py --teacher char): `make baselines`' char-lr
    (baselines._char_pipeline: TF-IDF of character 1-3-grams within words, LR C 1, balanced),
    fit on the training split's calls as their token ids spell them, so that it scores any id
    sequence training makes (crops, concatenations, dropped tokens) the same way."""

    def __init__(self, pieces: Sequence[str], seed: int = 1) -> None:
        from baselines import _char_pipeline
        self.pieces = list(pieces)
        self.pipe = _char_pipeline(seed)
        self.params = {"features": "make baselines' char-lr (character 1-3-grams, sublinear tf, l2; "
                                   "LR C 1, balanced) on the text the token ids spell"}

    def fit(self, seqs: Iterable[Sequence[int]], labels: Sequence[int]) -> "CharTeacher":
        self.pipe.fit([decode(s, self.pieces) for s in seqs], np.asarray(labels))
        return self

    def predict(self, seqs: Iterable[Sequence[int]]) -> np.ndarray:
        texts = [decode(s, self.pieces) for s in seqs]
        if not texts:
            return np.zeros(0)
        return self.pipe.predict_proba(texts)[:, 1]
