"""Tests for the speech-level shift (register.py) and gen.py --register-shift."""
from __future__ import annotations

import io
import json
import random
import sys
import tempfile
import unittest
import unittest.mock
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen  # noqa: E402
from register import formal_rate, shift_call, shift_down, shift_up  # noqa: E402
from test_gen import NORMAL, PHISH, write_base  # noqa: E402


class ShiftTest(unittest.TestCase):
    def test_down(self) -> None:
        for src, want in [
            ("안녕하십니까 김철수입니다", "안녕하세요 김철수예요"),
            ("담당 직원입니다", "담당 직원이에요"),
            ("본인 확인 부탁드리겠습니다", "본인 확인 부탁드릴게요"),
            ("처리되었습니다. 다른 문의 있으십니까?", "처리되었어요. 다른 문의 있으세요?"),
            ("홈페이지에서 직접 확인하십시오", "홈페이지에서 직접 확인하세요"),
            ("내일 다시 연락드립니다 감사합니다", "내일 다시 연락드려요 감사해요"),
            ("지점에 가져오시면 됩니다", "지점에 가져오시면 돼요"),
            ("그럼 제가 갑니다", "그럼 제가 가요"),
            ("습니다가 단어 안에 있으면 그대로", "습니다가 단어 안에 있으면 그대로"),
        ]:
            with self.subTest(src=src):
                self.assertEqual(shift_down(src), want)

    def test_up(self) -> None:
        for src, want in [
            ("안녕하세요 확인 좀 하려고요", "안녕하십니까 확인 좀 하려고요"),
            ("제가 내일 갈게요 처리해 드릴게요", "제가 내일 가겠습니다 처리해 드리겠습니다"),
            ("그거 제 거예요 돈이 없어요", "그거 제 겁니다 돈이 없습니다"),
            ("앱에서 확인하세요 네 됐어요", "앱에서 확인하십시오 네 됐습니다"),
            ("그렇게 해요, 괜찮아요?", "그렇게 합니다, 괜찮습니다?"),
        ]:
            with self.subTest(src=src):
                self.assertEqual(shift_up(src), want)

    def test_down_matches_go(self) -> None:
        """tokenize/testdata/polite_endings.tsv is what Go's tokenize.PoliteEndings gives (its
        TestPoliteEndingsGolden checks that side): the Go normalizer and shift_down agree."""
        golden = Path(__file__).resolve().parents[2] / "tokenize" / "testdata" / "polite_endings.tsv"
        rows = [ln.split("\t") for ln in golden.read_text(encoding="utf-8").splitlines()
                if ln and not ln.startswith("#")]
        self.assertGreater(len(rows), 300)
        for word, want in rows:
            self.assertEqual(shift_down(word), want, word)

    def test_share(self) -> None:
        turns = ["네 확인되었습니다", "알겠어요 그렇게 해요"]
        self.assertEqual(shift_call(turns, 0.0, random.Random(1)), turns)
        rng = random.Random(7)
        out = [tuple(shift_call(turns, 1.0, rng)) for _ in range(200)]
        down = (shift_down(turns[0]), shift_down(turns[1]))
        up = (shift_up(turns[0]), shift_up(turns[1]))
        self.assertEqual(set(out), {down, up})
        self.assertGreater(out.count(down), 60)
        self.assertGreater(out.count(up), 60)


class FormalRateTest(unittest.TestCase):
    def test_rate(self) -> None:
        self.assertEqual(formal_rate(""), 0.0)
        self.assertEqual(formal_rate("밥 먹었어 응 내일 봐"), 0.0)
        # 2 endings in 11 non-space characters.
        self.assertAlmostEqual(formal_rate("확인했습니다 감사합니다"), 2000.0 / 11)
        self.assertGreater(formal_rate(shift_up("네 알겠어요 확인해요")), formal_rate("네 알겠어요 확인해요"))

    def test_register_auc_cli(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        import register_auc  # noqa: E402
        with tempfile.TemporaryDirectory() as td:
            f = Path(td) / "calls.jsonl"
            rows = [("phishing", "고객님 확인했습니다 이체하십시오"), ("phishing", "안녕하십니까 본인 맞으십니까"),
                    ("normal", "야 밥 먹었어"), ("normal", "응 내일 보자 고마워")]
            f.write_text("".join(json.dumps({"label": l, "text": t}, ensure_ascii=False) + "\n" for l, t in rows),
                         encoding="utf-8")
            with redirect_stdout(io.StringIO()) as out:
                rc = register_auc.main(["--real", str(Path(td) / "none"), "--corpus", str(f)])
            self.assertEqual(rc, 0)
            self.assertIn(" 1.000 ", out.getvalue())
            # --polite folds 니다/니까/십시오 away; 고객님 and 세요 still rank these.
            with redirect_stdout(io.StringIO()) as polite:
                rc = register_auc.main(["--real", str(Path(td) / "none"), "--corpus", str(f), "--polite"])
            self.assertEqual(rc, 0)
            self.assertIn(" 1.000 ", polite.getvalue())
            self.assertNotEqual(out.getvalue(), polite.getvalue())
            with redirect_stdout(io.StringIO()), unittest.mock.patch("sys.stderr", io.StringIO()):
                self.assertEqual(register_auc.main(["--real", str(Path(td) / "none")]), 2)


class GenFlagTest(unittest.TestCase):
    def _gen(self, td: Path, *extra: str) -> list[dict]:
        base = write_base(td / "base", {"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL})
        out = td / ("out" + "".join(extra))
        with redirect_stdout(io.StringIO()):
            rc = gen.main(["--base", str(base), "--out", str(out), "--variants", "6", *extra])
        self.assertEqual(rc, 0)
        return [json.loads(l) for l in (out / "calls.jsonl").read_text().splitlines()]

    def test_zero_is_the_default_corpus_and_one_changes_calls(self) -> None:
        with tempfile.TemporaryDirectory() as td:
            plain = self._gen(Path(td))
            zero = self._gen(Path(td), "--register-shift", "0")
            full = self._gen(Path(td), "--register-shift", "1")
        self.assertEqual(plain, zero)
        self.assertEqual([r["id"] for r in plain], [r["id"] for r in full])
        self.assertGreater(sum(a["text"] != b["text"] for a, b in zip(plain, full)), len(plain) // 2)

    def test_out_of_range_is_a_usage_error(self) -> None:
        with self.assertRaises(SystemExit) as cm, redirect_stdout(io.StringIO()), \
                unittest.mock.patch("sys.stderr", io.StringIO()):
            gen.main(["--out", "/nonexistent", "--register-shift", "1.5"])
        self.assertEqual(cm.exception.code, 2)


if __name__ == "__main__":
    unittest.main()
