"""Tests for the corpus generator: /usr/bin/python3 -m unittest discover -s scripts/corpus"""
from __future__ import annotations

import io
import json
import random
import statistics
import sys
import tempfile
import time
import types
import unittest
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen  # noqa: E402
import noise  # noqa: E402
import overlap  # noqa: E402
from basefmt import Alt, Dialogue, Slot, Turn, parse_base, parse_template  # noqa: E402
from generate import excerpt_turns, fix_particle, generate, make_call, render_turn  # noqa: E402
from noise import draw_params, noisy_turn  # noqa: E402
from numko import parse_sino, sino  # noqa: E402
from shortcut import roc_auc, split_groups  # noqa: E402
from slots import SlotLists  # noqa: E402

SLOTS_DIR = Path(__file__).resolve().parents[2] / "corpus" / "slots"

PHISH = """# phishing sample
=== prosecutor-001
A: 여보세요 {NAME} 씨 [본인 되시죠|맞으시죠]
B: 네 그런데요 누구세요
A: 저는 {CITY}지방검찰청 [첨단범죄수사팀|금융범죄수사부] {SURNAME} 수사관입니다
B: 네? 검찰이요?
A: {NAME} 씨 명의로 된 {BANK} 계좌가 사건에 연루됐습니다. {AMOUNT}이 오갔어요
B: 저는 그런 적 없는데요
A: [그러니까|네 그래서] 확인차 연락드렸습니다 사건번호는 {CASE_NO}입니다
"""
NORMAL = """=== bank_callcenter-001
A: 네 {BANK} 고객센터 {CALLER}입니다
B: 아 네 {NAME}인데요 적금 때문에요
A: [네 |]고객님 본인 확인 위해 생년월일 말씀해 주시겠어요
B: 팔공 공삼 일오요
A: 확인됐습니다 금리는 {RATE}이고 {DATE}까지 가입하시면 돼요
B: 네 감사합니다
=== bank_callcenter-002
A: {NAME} 고객님 되시죠 {CARDCO}입니다
B: 네 맞아요
A: 신청하신 카드 {DATE} {TIME}에 {COURIER}로 도착합니다
B: 아 네
A: 수령하실 때 신분증 보여주시면 되세요
B: 네 알겠습니다
"""


def write_base(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


class ParserTest(unittest.TestCase):
    def test_template_parts(self) -> None:
        parts, issues = parse_template("저는 {CITY}지검 [가|나 {NAME}|] 입니다")
        self.assertEqual(issues, [])
        self.assertEqual(parts[0], "저는 ")
        self.assertEqual(parts[1], Slot("CITY"))
        alt = parts[3]
        self.assertIsInstance(alt, Alt)
        assert isinstance(alt, Alt)
        self.assertEqual(alt.options, (("가",), ("나 ", Slot("NAME")), ()))

    def test_template_errors(self) -> None:
        cases = {
            "{FOO} 씨": "unknown slot {FOO}",
            "[a[b|c]|d]": "nested '['",
            "a ] b": "unbalanced ']'",
            "[a|b": "unbalanced '['",
            "[a] b": "without '|'",
            "{이름} 씨": "stray brace",
        }
        for text, want in cases.items():
            with self.subTest(text=text):
                _, issues = parse_template(text, "f", 7)
                self.assertTrue(any(want in i.msg and i.line == 7 for i in issues), issues)

    def test_good_base(self) -> None:
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td), {"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL})
            ds, issues = parse_base(base)
            self.assertEqual(issues, [])
            self.assertEqual(sorted(d.id for d in ds), ["bank_callcenter-001", "bank_callcenter-002", "prosecutor-001"])
            p = next(d for d in ds if d.id == "prosecutor-001")
            self.assertEqual((p.label, p.family, len(p.turns), p.line), ("phishing", "prosecutor", 7, 2))
            self.assertEqual([t.speaker for t in p.turns], list("ABABABA"))

    def test_file_errors_have_lines(self) -> None:
        bad = ("junk before header\n=== prosecutor-001\nA: 네\nC: 누구\nA:붙음\n"
               "=== prosecutor-001\nA: 1\nB: 2\nA: 3\nB: 4\nA: 5\nB: 6\n=== wrong-002\n" + "A: 네\n" * 6 +
               "==== prosecutor-9\n")
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td), {"phishing/prosecutor.txt": bad})
            _, issues = parse_base(base)
            got = {(i.line, i.msg.split(" ")[0]) for i in issues}
            want = {(1, "text"), (4, "turn"), (5, "turn"), (2, "prosecutor-001:"), (6, "duplicate"),
                    (13, "id"), (20, "bad")}
            self.assertTrue(want <= got, sorted(got))

    def test_check_cli_exit_codes(self) -> None:
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td), {"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL})
            out = io.StringIO()
            with redirect_stdout(out):
                self.assertEqual(gen.main(["--check", "--base", str(base)]), 0)
            self.assertIn("bank_callcenter", out.getvalue())
            (base / "normal" / "bank_callcenter.txt").write_text(NORMAL + "B: {NOPE}\n", encoding="utf-8")
            out = io.StringIO()
            with redirect_stdout(out):
                self.assertEqual(gen.main(["--check", "--base", str(base)]), 1)
            self.assertIn("bank_callcenter.txt:15: unknown slot {NOPE}", out.getvalue())


class RenderTest(unittest.TestCase):
    lists = SlotLists.load(SLOTS_DIR)

    def test_repeated_slot_keeps_value_and_names_differ(self) -> None:
        parts, _ = parse_template("{NAME} {CALLER} {NAME} {BANK} {BANK}")
        for i in range(200):
            vals: dict[str, str] = {}
            w = render_turn(parts, vals, self.lists, random.Random(i)).split()
            self.assertEqual(w[0], w[2])
            self.assertNotEqual(w[0], w[1])
            self.assertEqual(vals["NAME"], w[0])

    def test_district_office(self) -> None:
        parts, _ = parse_template("{DISTRICT}구청 {DISTRICT}청")
        for i in range(50):
            w = render_turn(parts, {}, self.lists, random.Random(i)).split()
            self.assertNotIn("구구청", w[0])
            self.assertEqual(w[0], w[1])

    def test_particles(self) -> None:
        cases = [("김민준", "을 ", "을 "), ("이수아", "을 ", "를 "), ("이수아", "은", "는"), ("국민은행", "로", "으로"),
                 ("서울", "으로", "로"), ("3,000,000원", "를", "을"), ("010-1234-5672", "으로", "로"), ("KT", "를", "를"),
                 ("이수아", "이랑", "이랑"), ("김민준", "예요", "이에요"), ("이수아", "이에요.", "예요.")]
        for value, following, want in cases:
            with self.subTest(value=value, following=following):
                self.assertEqual(fix_particle(value, following), want)

    def test_slot_lists_cover_all_slots(self) -> None:
        rng = random.Random(0)
        for name in sorted(self.lists.lists):
            for _ in range(50):
                v = self.lists.draw(name, rng)
                self.assertTrue(v and "{" not in v and "@" not in v, (name, v))


class DeterminismTest(unittest.TestCase):
    lists = SlotLists.load(SLOTS_DIR)

    def _run(self, files: dict[str, str], seed: int) -> tuple[bytes, bytes]:
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td) / "base", files)
            out = Path(td) / "out"
            with redirect_stdout(io.StringIO()):
                rc = gen.main(["--base", str(base), "--out", str(out), "--seed", str(seed), "--variants", "5"])
            self.assertEqual(rc, 0)
            return (out / "calls.jsonl").read_bytes(), (out / "stats.json").read_bytes()

    def test_same_seed_same_bytes(self) -> None:
        files = {"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL}
        a, b = self._run(files, 1), self._run(files, 1)
        self.assertEqual(a, b)
        self.assertNotEqual(a[0], self._run(files, 2)[0])
        rows = [json.loads(l) for l in a[0].decode().splitlines()]
        self.assertEqual(len(rows), 15)
        self.assertEqual(len({r["text"] for r in rows}), 15)
        self.assertEqual({r["id"] for r in rows if r["group"] == "prosecutor-001"},
                         {f"prosecutor-001-v{i:02d}" for i in range(5)})
        for r in rows:
            self.assertEqual(r["text"], " ".join(s["text"] for s in r["segments"]))
            ends = [0.0] + [x for s in r["segments"] for x in (s["start"], s["end"])]
            self.assertEqual(ends, sorted(ends), r["id"])

    def test_only_named_set(self) -> None:
        files = {"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL}
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td) / "base", files)
            ids = Path(td) / "set.txt"
            ids.write_text("# a set\nprosecutor-001\nbank_callcenter-001  # kept\n", encoding="utf-8")
            out = Path(td) / "out"
            with redirect_stdout(io.StringIO()):
                rc = gen.main(["--base", str(base), "--out", str(out), "--variants", "2", "--only", str(ids)])
            self.assertEqual(rc, 0)
            groups = {json.loads(l)["group"] for l in (out / "calls.jsonl").read_text().splitlines()}
            self.assertEqual(groups, {"prosecutor-001", "bank_callcenter-001"})
            ids.write_text("prosecutor-999\n", encoding="utf-8")
            with redirect_stdout(io.StringIO()) as msg:
                rc = gen.main(["--base", str(base), "--out", str(out), "--only", str(ids)])
            self.assertEqual(rc, 1)
            self.assertIn("prosecutor-999", msg.getvalue())

    def test_adding_a_dialogue_keeps_others(self) -> None:
        one = self._run({"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL}, 1)[0]
        extra = NORMAL.replace("bank_callcenter-001", "bank_callcenter-003").replace("bank_callcenter-002", "bank_callcenter-004")
        two = self._run({"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL + extra}, 1)[0]
        self.assertTrue(set(one.decode().splitlines()) <= set(two.decode().splitlines()))


class NoiseTest(unittest.TestCase):
    lists = SlotLists.load(SLOTS_DIR)

    def test_label_is_not_an_input(self) -> None:
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td), {"phishing/prosecutor.txt": PHISH})
            (d,), _ = parse_base(base)
        twin = type(d)(id=d.id, family=d.family, label="normal", path=d.path, line=d.line, turns=d.turns)
        for v in range(20):
            self.assertEqual(make_call(d, v, 1, self.lists).text, make_call(twin, v, 1, self.lists).text)

    def test_same_noise_distribution_per_class(self) -> None:
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td), {"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL})
            ds, _ = parse_base(base)
        calls, _ = generate(ds, self.lists, 7, 300)
        by = {lab: [c for c in calls if c.label == lab] for lab in ("phishing", "normal")}
        s = {lab: statistics.fmean(c.noise.strength for c in cs) for lab, cs in by.items()}
        self.assertAlmostEqual(s["phishing"], s["normal"], delta=0.06)
        for lab, cs in by.items():
            self.assertAlmostEqual(s[lab], 0.5, delta=0.06)
            modes = Counter(c.noise.punct_mode for c in cs)
            self.assertAlmostEqual(modes["strip"] / len(cs), 0.45, delta=0.08, msg=lab)
            # Excerpts (start and end mid-call) first, then end-cuts among the rest; the same for
            # both classes (dialogues of 6+ turns only can be excerpts).
            ex = sum(c.excerpt for c in cs) / len(cs)
            self.assertGreater(ex, 0.25, msg=lab)
            self.assertAlmostEqual(sum(c.cut for c in cs) / len(cs), 0.25 * (1 - ex), delta=0.07, msg=lab)
        ex = {lab: sum(c.excerpt for c in cs) / len(cs) for lab, cs in by.items()}
        self.assertAlmostEqual(ex["phishing"], ex["normal"], delta=0.08)

    def test_excerpt_turns(self) -> None:
        turns = [f"턴{i} 하나 둘 셋 넷 다섯" for i in range(12)]
        for i in range(200):
            out = excerpt_turns(turns, random.Random(i))
            self.assertGreaterEqual(len(out), 3)
            self.assertNotEqual(out[0], turns[0])  # never the whole opening
            # the middle turns are kept verbatim, in order
            mid = out[1:-1]
            if mid:
                k = turns.index(mid[0])
                self.assertEqual(turns[k:k + len(mid)], mid)

    def test_writers_punctuation_never_leaks(self) -> None:
        # Writers punctuate at different rates (hence by class); the output must not depend on it.
        for i in range(300):
            a = noisy_turn("네. 그럼 계좌는요? 알겠습니다! 그런데…", draw_params(random.Random(i)), random.Random(i))
            b = noisy_turn("네 그럼 계좌는요 알겠습니다 그런데", draw_params(random.Random(i)), random.Random(i))
            self.assertEqual(a, b)

    def test_noise_changes_text_and_strips_markup(self) -> None:
        text = "네. 금융감독원 수사관입니다, 계좌 이체 3,000,000원 6월 15일 오후 3시요?"
        rng = random.Random(3)
        outs = {noisy_turn(text, draw_params(rng), rng) for _ in range(200)}
        joined = " ".join(outs)
        self.assertGreater(len(outs), 150)
        for want in ("금융감동원", "삼백만", "유월", "세 시", "수사간"):
            self.assertIn(want, joined)
        self.assertIn("3,000,000원", joined)  # thousands separators survive punctuation stripping

    def test_sino_round_trip(self) -> None:
        for n in list(range(1, 2000)) + [10000, 35000, 3000000, 15000000, 120000000, 987654321]:
            self.assertEqual(parse_sino(sino(n)), n, sino(n))


class ShortcutTest(unittest.TestCase):
    def test_auc(self) -> None:
        self.assertEqual(roc_auc([1, 2, 3, 4], [False, False, True, True]), 1.0)
        self.assertEqual(roc_auc([4, 3, 2, 1], [False, False, True, True]), 0.0)
        self.assertEqual(roc_auc([1, 1, 1, 1], [False, True, False, True]), 0.5)

    def test_split_by_group(self) -> None:
        ex = [(f"g{i}", "phishing" if i % 2 else "normal", "t") for i in range(100)]
        test = split_groups(ex)
        self.assertEqual(len(test), 20)
        self.assertEqual(sum(int(g[1:]) % 2 for g in test), 10)
        self.assertEqual(test, split_groups(list(reversed(ex))))


def _dlg(did: str, label: str, turns: list[str]) -> Dialogue:
    d = Dialogue(id=did, family=did.rsplit("-", 1)[0], label=label, path="<mem>", line=1)
    for i, t in enumerate(turns):
        parts, issues = parse_template(t)
        assert not issues, issues
        d.turns.append(Turn(speaker="AB"[i % 2], raw=t, parts=parts, line=i + 2))
    return d


class OverlapTest(unittest.TestCase):
    TURNS = ["여보세요 {NAME} 씨 [본인 되시죠|맞으시죠]", "네 그런데요 누구세요",
             "저는 {CITY}지방검찰청 [첨단범죄수사팀|금융범죄수사부] {SURNAME} 수사관입니다",
             "네? 검찰이요? 제가 무슨 일로요", "{NAME} 씨 명의로 된 {BANK} 계좌가 사건에 연루됐습니다",
             "저는 그런 적 없는데요 정말이에요", "확인차 연락드렸습니다 사건번호는 {CASE_NO}입니다 메모하세요"]

    def test_first_option_expansion(self) -> None:
        d = _dlg("prosecutor-001", "phishing", ["여보세요 {NAME}씨 [본인 되시죠|맞으시죠]. 네", "[|네] 누구세요?"] * 3)
        self.assertEqual(overlap.first_option_words(d)[:6], ["여보세요", "{NAME}", "씨", "본인", "되시죠", "네"])
        self.assertEqual(overlap.first_option_words(d)[6], "누구세요")

    def test_near_copy_is_an_error_naming_both(self) -> None:
        a = _dlg("prosecutor-001", "phishing", self.TURNS)
        b = _dlg("police_cyber-004", "phishing", self.TURNS[:-1] + ["완전히 다른 마지막 말씀을 드리고 끊겠습니다 수고하세요"])
        # Differences only in non-first options still make a copy.
        c = _dlg("fss_officer-002", "phishing", [t.replace("[본인 되시죠|맞으시죠]", "[본인 되시죠|네]") for t in self.TURNS])
        other = _dlg("bank_callcenter-001", "normal", ["네 {BANK} 고객센터 {CALLER}입니다 무엇을 도와드릴까요",
                                                       "아 네 적금 만기 때문에 전화했어요", "본인 확인 위해 생년월일 말씀해 주시겠어요",
                                                       "팔공 공삼 일오요", "확인됐습니다 금리는 {RATE}입니다", "네 감사합니다"])
        pairs = overlap.similar_pairs([a, b, c, other])
        copies = {(p.a, p.b) for p in overlap.near_copies(pairs)}
        self.assertEqual(copies, {("prosecutor-001", "police_cyber-004"), ("prosecutor-001", "fss_officer-002"),
                                  ("police_cyber-004", "fss_officer-002")})
        ac = next(p for p in pairs if {p.a, p.b} == {"prosecutor-001", "fss_officer-002"})
        self.assertEqual(ac.overlap, 1.0)
        self.assertFalse(any("bank_callcenter-001" in (p.a, p.b) and p.overlap > 0.5 for p in pairs))
        with tempfile.TemporaryDirectory() as td:
            text = "\n".join(f"{'AB'[i % 2]}: {t}" for i, t in enumerate(self.TURNS))
            base = write_base(Path(td), {"phishing/prosecutor.txt": "=== prosecutor-001\n" + text + "\n",
                                         "phishing/police_cyber.txt": "=== police_cyber-004\n" + text + "\n",
                                         "normal/bank_callcenter.txt": NORMAL})
            out = io.StringIO()
            with redirect_stdout(out):
                self.assertEqual(gen.main(["--check", "--base", str(base)]), 1)
            self.assertIn("near-copy dialogues police_cyber-004 and prosecutor-001", out.getvalue())
            self.assertIn("most similar base dialogue pairs", out.getvalue())

    def test_inverted_index_is_fast_on_5000(self) -> None:
        rng = random.Random(5)
        vocab = [f"말{i}" for i in range(3000)]
        common = "네 {BANK} 고객센터 {CALLER}입니다 무엇을 도와드릴까요"
        ds = [_dlg(f"fam-{i:04d}", "normal" if i % 2 else "phishing",
                   [common] + [" ".join(rng.choices(vocab, k=10)) for _ in range(11)]) for i in range(5000)]
        ds.append(_dlg("fam-9999", "phishing", [common] + [t.raw for t in ds[7].turns[1:-1]] + ["다른 말 다른 말 다른 말"]))
        t0 = time.monotonic()
        pairs = overlap.similar_pairs(ds)
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual([(p.a, p.b) for p in overlap.near_copies(pairs)], [("fam-0007", "fam-9999")])

    def test_slot_used_by_one_class_is_a_warning(self) -> None:
        with tempfile.TemporaryDirectory() as td:
            base = write_base(Path(td), {"phishing/prosecutor.txt": PHISH, "normal/bank_callcenter.txt": NORMAL})
            ds, _ = parse_base(base)
            warns = overlap.slot_warnings(ds)
            self.assertIn("warning: slot {CASE_NO} is used by phishing dialogues only (phishing 1, normal 0)", warns)
            self.assertIn("warning: slot {RATE} is used by normal dialogues only (phishing 0, normal 1)", warns)
            self.assertIn("warning: slot {HOSPITAL} is used by no dialogue", warns)
            self.assertFalse(any("{NAME}" in w or "{BANK}" in w for w in warns))
            out = io.StringIO()
            with redirect_stdout(out):
                self.assertEqual(gen.main(["--check", "--base", str(base)]), 0)  # warnings only
            self.assertIn("{CASE_NO} is used by phishing dialogues only", out.getvalue())

    def test_noise_must_not_take_the_label(self) -> None:
        gen_src = (Path(__file__).resolve().parent / "generate.py").read_text(encoding="utf-8")
        self.assertEqual(overlap.noise_errors(noise, gen_src), [])
        self.assertEqual(overlap.slot_dir_errors(SLOTS_DIR), [])
        fake = types.ModuleType("fakenoise")
        fake.FILLERS = {"phishing": ("어",), "normal": ("음",)}  # type: ignore[attr-defined]
        fake.BACKCHANNELS = ("네",)  # type: ignore[attr-defined]
        exec("def word_noise(text, p, rng, label):\n    return text\n", fake.__dict__)
        errs = overlap.noise_errors(fake, "x = rng.choice(FILLERS[d.label])\ny = word_noise(t, p, rng, 'normal')\n")
        self.assertTrue(any("FILLERS must be one flat list" in e for e in errs), errs)
        self.assertTrue(any("word_noise takes 'label'" in e for e in errs), errs)
        self.assertEqual(sum("label-derived" in e for e in errs), 2, errs)
        with tempfile.TemporaryDirectory() as td:
            (Path(td) / "phishing").mkdir()
            self.assertEqual(len(overlap.slot_dir_errors(Path(td))), 1)


if __name__ == "__main__":
    unittest.main()
