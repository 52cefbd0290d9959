#!/usr/bin/python3
"""Self-tests for scripts/baselines.py on a tiny synthetic set (about a second, CPU).

  /usr/bin/python3 -m unittest discover -s scripts -p 'test_*.py'
"""
from __future__ import annotations

import json
import random
import tempfile
import unittest
from pathlib import Path

import numpy as np

try:
    import baselines as bl
except ImportError as e:  # python3-sklearn missing: `make torch` installs it
    bl = None
    _why = str(e)


def tiny_set(n: int, seed: int) -> tuple[list[str], list[list[int]], list[int], list[str]]:
    """Phishing calls mention scam words and token 7; normal calls do neither. Groups of 4 variants."""
    rng = random.Random(seed)
    scam = ["검찰 수사관입니다", "안전계좌로 이체하세요", "명의가 도용됐습니다", "대출 상환금 송금"]
    plain = ["택배 도착했습니다", "내일 저녁 같이 먹자", "예약 확인 전화드렸어요", "네 알겠습니다"]
    texts, ids, labels, groups = [], [], [], []
    for i in range(n):
        y = i % 2
        words = rng.choices(scam if y else plain, k=3) + rng.choices(plain, k=2)
        toks = [rng.randrange(10, 60) for _ in range(20)] + ([7, 7] if y else [])
        rng.shuffle(toks)
        texts.append(" ".join(words))
        ids.append(toks)
        labels.append(y)
        groups.append(f"{'p' if y else 'n'}-{i // 8}")
    return texts, ids, labels, groups


@unittest.skipIf(bl is None, "baselines.py needs python3-sklearn (make torch)")
class BaselinesTest(unittest.TestCase):
    def test_normalizer_of(self) -> None:
        """The baselines tokenize with the normalizer the bundle's card names, or none."""
        assert bl is not None
        with tempfile.TemporaryDirectory() as d:
            tok = Path(d) / "tokenizer.json"
            self.assertEqual(bl.normalizer_of(tok), "")
            (Path(d) / "card.json").write_text(json.dumps({"text_normalizer": "polite-endings"}), encoding="utf-8")
            self.assertEqual(bl.normalizer_of(tok), "polite-endings")
            (Path(d) / "card.json").write_text("{}", encoding="utf-8")
            self.assertEqual(bl.normalizer_of(tok), "")

    def test_fit_score_calibrate(self) -> None:
        assert bl is not None
        tx, ids, y, _ = tiny_set(80, 1)
        b = bl.fit_baselines(tx, ids, y)
        vt, vi, vy, _ = tiny_set(40, 2)
        thr = b.calibrate(vt, vi, vy)
        self.assertEqual(set(thr), set(bl.RULES))
        sc = b.scores(vt, vi)
        self.assertEqual(set(sc), set(bl.MODELS))
        yy = np.array(vy)
        for m in bl.MODELS:
            self.assertEqual(sc[m].shape, (40,))
            r = bl.metrics(sc[m], yy, thr["val-f1"][m])
            self.assertGreater(r["roc_auc"], 0.95, m)
            self.assertGreater(r["f1"], 0.9, m)
            self.assertLessEqual(bl.metrics(sc[m], yy, thr["val-fpr5"][m])["fpr"], 0.05, m)
        # The keyword rule needs no training and reads only the text.
        self.assertEqual(bl.keyword_score(""), 0.0)
        self.assertAlmostEqual(bl.keyword_score("계좌 이체"), 100 * 2 / 4)
        self.assertAlmostEqual(bl.keyword_score("대포통장"), 100 * 2 / 4)  # 대포통장 and 통장
        with self.assertRaises(ValueError):
            bl.fit_baselines(tx, ids, [0] * len(tx))
        # Without the streaming row its scores are NaN and calibration leaves it out.
        b2 = bl.fit_baselines(tx, ids, y, stream_row=False)
        self.assertTrue(np.isnan(b2.scores(vt, vi)["ids-lr-stream"]).all())
        self.assertNotIn("ids-lr-stream", b2.calibrate(vt, vi, vy)["val-f1"])

    def test_stream_row_is_a_running_sum(self) -> None:
        # ids-lr-stream's logit must be what a streaming state carries: the sum, over the tokens,
        # of the weights of the 1-3-grams ending there, divided by sqrt(token count), plus b.
        assert bl is not None
        tx, ids, y, _ = tiny_set(80, 1)
        b = bl.fit_baselines(tx, ids, y)
        assert b.ids_lr_stream is not None
        vocab = b.ids_lr_stream.vec.vocabulary_
        w = b.ids_lr_stream.lr.coef_.ravel() * b.ids_lr_stream.vec.idf_
        bias = float(b.ids_lr_stream.lr.intercept_[0])
        _, vi, _, _ = tiny_set(10, 3)
        got = b.ids_lr_stream.lr.decision_function(b.ids_lr_stream._x([bl.ids_doc(x) for x in vi]))
        for row, g in zip(vi, got):
            toks = [str(t) for t in row]
            total = 0.0
            for t in range(len(toks)):
                for k in (1, 2, 3):
                    if t + 1 >= k:
                        j = vocab.get(" ".join(toks[t + 1 - k:t + 1]))
                        total += w[j] if j is not None else 0.0
            self.assertAlmostEqual(float(g), total / np.sqrt(len(toks)) + bias, places=4)

    def test_thresholds(self) -> None:
        assert bl is not None
        s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
        y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
        t = bl.threshold_max_f1(s, y)
        f1 = {float(c): bl.metrics(s, y, c)["f1"] for c in s}
        self.assertEqual(f1[t], max(f1.values()))
        # 4 normals: 5% allows none at or above t -> just above the top normal (0.7).
        self.assertEqual(bl.threshold_at_fpr(s, y, 0.05), 0.8)
        self.assertEqual(bl.threshold_at_fpr(s, y, 0.25), 0.5)  # one normal (0.7) allowed
        ties = np.array([1.0, 1.0, 1.0])
        self.assertGreater(bl.threshold_at_fpr(ties, np.array([0, 1, 0]), 0.05), 1.0)

    def test_split_by_group(self) -> None:
        assert bl is not None
        tx, ids, y, g = tiny_set(400, 3)
        recs = [bl.Record(id=str(i), text=t, label=lab, ids=x, group=gr) for i, (t, x, lab, gr) in enumerate(zip(tx, ids, y, g))]
        tr, va = bl.split_by_group(recs, 0.15, 1)
        self.assertFalse({r.group for r in tr} & {r.group for r in va})
        self.assertEqual(len(tr) + len(va), 400)
        for lab in (0, 1):
            self.assertEqual(len({r.group for r in va if r.label == lab}), round(50 * 0.15))  # 50 groups per class
        tr2, va2 = bl.split_by_group(list(reversed(recs)), 0.15, 1)
        self.assertEqual({r.id for r in va}, {r.id for r in va2})

    def test_lstm_results_and_table(self) -> None:
        assert bl is not None
        with tempfile.TemporaryDirectory() as td:
            p = Path(td) / "r.json"
            p.write_text(json.dumps({"name": "round3", "files": {"vguard.jsonl": {
                "roc_auc": 0.9, "precision": 0.8, "recall": 0.7, "f1": 0.75, "fpr": 0.05}}}))
            name, files = bl.load_lstm_results(p)
        self.assertEqual(name, "round3")
        self.assertEqual(files["vguard"]["f1"], 0.75)
        table = bl.markdown_table({"vguard": {"lstm:round3": files["vguard"]}}, {"vguard": (111, 317)}, "val-f1")
        self.assertIn("| vguard (111 / 317) | lstm:round3 | suspicious | 0.900 | 0.800 | 0.700 | 0.750 | 0.050 |", table)


if __name__ == "__main__":
    unittest.main()
