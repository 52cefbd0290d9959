#!/usr/bin/python3
"""Self-tests for scripts/ablate.py's corpus sets and train.py's frequency-scaled dropout (CPU, ~1 s).

  /usr/bin/python3 -m unittest discover -s scripts -p 'test_*.py'
"""
from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

import numpy as np

import ablate
import train

BASE = """# test family
=== {fam}-001
A: {a}
B: 네 알겠습니다
A: 내일 오전에 시간 되세요
B: 네 열 시쯤 갈게요
A: 네 그럼 그때 뵙겠습니다
B: 네 수고하세요

=== {fam}-002
A: 안녕하세요 예약 확인 전화드렸어요
B: 네 맞아요
A: 내일 오후 두 시 맞으시죠
B: 네 그 시간에 갈게요
A: 네 감사합니다
B: 네 들어가세요
"""


class CorpusSetTest(unittest.TestCase):
    def test_write_set_leaves_out_hard_normals_and_writes_them_for_calibration(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            base = Path(d) / "base"
            (base / "normal").mkdir(parents=True)
            (base / "phishing").mkdir()
            (base / "normal" / "police_real.txt").write_text(
                BASE.format(fam="police_real", a="경찰서 수사과입니다 분실물 찾아가세요"), encoding="utf-8")
            (base / "normal" / "hospital_clinic.txt").write_text(
                BASE.format(fam="hospital_clinic", a="검사 결과 나왔습니다 내원해 주세요"), encoding="utf-8")
            (base / "phishing" / "prosecutor.txt").write_text(
                BASE.format(fam="prosecutor", a="검찰청 수사관입니다 명의가 도용됐습니다"), encoding="utf-8")
            # "검사" alone is a medical test, not a prosecutor: only police_real-001 is a hard normal.
            self.assertEqual(ablate.hard_normals(base), ["police_real-001"])
            out = Path(d) / "set.txt"
            orig = ablate.REPO
            try:
                ablate.REPO = Path(d)
                (Path(d) / "corpus").mkdir()
                (base).rename(Path(d) / "corpus" / "base")
                ablate.write_set(Path(d) / "corpus" / "base", out, share=0.0)
            finally:
                ablate.REPO = orig
            ids = ablate.read_set(out)
            self.assertNotIn("police_real-001", ids)
            self.assertEqual(len(ids), 5)  # phishing dialogues and the other normals all stay
            held = ablate.read_set(out.with_name("set-calibration.txt"))
            self.assertEqual(held, {"police_real-001"})

    def test_extend_set_adds_new_dialogues_and_keeps_the_old_choice(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            base = Path(d) / "base"
            (base / "normal").mkdir(parents=True)
            (base / "phishing").mkdir()
            two = BASE.format(fam="police_real", a="경찰서 수사과입니다 분실물 찾아가세요")
            (base / "normal" / "police_real.txt").write_text(
                two + two.replace("-001", "-003").replace("-002", "-004"), encoding="utf-8")
            (base / "phishing" / "prosecutor.txt").write_text(
                BASE.format(fam="prosecutor", a="검찰청 수사관입니다 명의가 도용됐습니다"), encoding="utf-8")
            old = Path(d) / "old.txt"
            # The old set kept hard normal 001 and held none out; 003 (hard) and 004 are new.
            old.write_text("# old\npolice_real-001\npolice_real-002\nprosecutor-001\nprosecutor-002\n", encoding="utf-8")
            (Path(d) / "old-calibration.txt").write_text("# none\n", encoding="utf-8")
            out = Path(d) / "new.txt"
            ablate.extend_set(base, old, out)
            self.assertEqual(ablate.read_set(out), {"police_real-001", "police_real-002", "police_real-004",
                                                    "prosecutor-001", "prosecutor-002"})
            self.assertEqual(ablate.read_set(Path(d) / "new-calibration.txt"), {"police_real-003"})
            old.write_text("# old\npolice_real-009\n", encoding="utf-8")
            with self.assertRaises(SystemExit):  # an id the corpus no longer has
                ablate.extend_set(base, old, out)


class FreqDropoutTest(unittest.TestCase):
    def test_frequent_tokens_drop_more(self) -> None:
        class C:
            def __init__(self, ids: list[int]) -> None:
                self.ids = ids
        calls = [C([2, 3, 4]), C([2, 3, 5]), C([2, 6])]
        t = train.freq_drop_table(calls, 8, 0.5)
        self.assertAlmostEqual(float(t[2]), 0.5)  # in every call
        self.assertEqual(float(t[4]), 0.0)  # rarest
        self.assertTrue(0 < t[3] < 0.5)
        self.assertEqual(float(t[7]), 0.0)  # never seen
        out = train.corrupt(np.random.RandomState(1), np.array([2] * 2000 + [4] * 2000), 1, 0.0, 0.0, 0.0, t)
        self.assertAlmostEqual(float((out[:2000] == 1).mean()), 0.5, delta=0.05)
        self.assertEqual(int((out[2000:] == 1).sum()), 0)


if __name__ == "__main__":
    unittest.main()
