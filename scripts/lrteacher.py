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
