"""Speech-level shift of a rendered call: 하십시오체 (formal: 합니다, 십니까) <-> 해요체 (polite: 해요, 세요).

Why: on the real-eval files the share of formal endings alone ranks calls well, but in opposite
directions (scripts/README.md "Round 15"): call-centre normals are the most formal calls of one
file, scams the most formal calls of the other three. A model that reads the speech level wins on
some files only at the others' cost. gen.py --register-shift P rewrites a share P of the calls one
level up or down (the direction drawn at random, never from the label), so that the endings carry
less class signal and what the caller asks for carries more.

The rules are suffix rewrites at word ends; they are meant to be plausible STT text, not perfect
grammar (a rule that cannot tell 하세요 "please do" from 하세요? "do you" picks one reading).
"""
from __future__ import annotations

import random
import re

_BASE, _LAST = 0xAC00, 0xD7A3
_T_B, _T_L = 17, 8  # final ㅂ and ㄹ in the syllable block
_END = r"(?=$|[\s.,?!~…])"


def _final(ch: str) -> int:
    o = ord(ch)
    return (o - _BASE) % 28 if _BASE <= o <= _LAST else -1


def _set_final(ch: str, t: int) -> str:
    o = ord(ch) - _BASE
    return chr(_BASE + o - o % 28 + t)


# Down: formal -> polite. Longest endings first; each is a fixed string at a word end.
_DOWN: tuple[tuple[str, str], ...] = (
    ("하십시오", "하세요"), ("십시오", "세요"),
    ("하겠습니다", "할게요"), ("드리겠습니다", "드릴게요"), ("겠습니다", "겠어요"),
    ("하겠습니까", "할까요"), ("겠습니까", "겠어요"),
    ("합니다", "해요"), ("됩니다", "돼요"), ("십니다", "세요"), ("립니다", "려요"),
    ("합니까", "해요"), ("됩니까", "돼요"), ("십니까", "세요"), ("습니까", "어요"),
    ("습니다", "어요"),
)
_DOWN_RE = re.compile("(" + "|".join(re.escape(a) for a, _ in _DOWN) + ")" + _END)
_DOWN_MAP = dict(_DOWN)
# 입니다 / 입니까 after a noun: 예요 after a vowel, 이에요 after a consonant.
_IB_RE = re.compile(r"([가-힣])입니[다까]" + _END)
# Any other syllable with a final ㅂ before 니다 / 니까 (갑니다, 옵니까): drop the ㅂ, add 요.
_BNIDA_RE = re.compile(r"([가-힣])니[다까]" + _END)

# Up: polite -> formal.
_UP: tuple[tuple[str, str], ...] = (
    ("안녕하세요", "안녕하십니까"), ("하세요", "하십시오"), ("세요", "십니까"),
    ("해요", "합니다"), ("돼요", "됩니다"), ("거예요", "겁니다"), ("이에요", "입니다"), ("예요", "입니다"),
    ("겠어요", "겠습니다"), ("었어요", "었습니다"), ("았어요", "았습니다"), ("였어요", "였습니다"),
    ("했어요", "했습니다"), ("있어요", "있습니다"), ("없어요", "없습니다"),
    ("어요", "습니다"), ("아요", "습니다"),
)
_UP_RE = re.compile("(" + "|".join(re.escape(a) for a, _ in sorted(_UP, key=lambda x: -len(x[0]))) + ")" + _END)
_UP_MAP = dict(_UP)
# 할게요 -> 하겠습니다: the ㄹ of the syllable before 게요 goes.
_GEYO_RE = re.compile(r"([가-힣])게요" + _END)


def shift_down(text: str) -> str:
    def ib(m: re.Match[str]) -> str:
        prev = m.group(1)
        return prev + ("예요" if _final(prev) == 0 else "이에요")

    def bnida(m: re.Match[str]) -> str:
        prev = m.group(1)
        if _final(prev) != _T_B:
            return m.group(0)
        return _set_final(prev, 0) + "요"

    text = _DOWN_RE.sub(lambda m: _DOWN_MAP[m.group(1)], text)
    text = _IB_RE.sub(ib, text)
    return _BNIDA_RE.sub(bnida, text)


def shift_up(text: str) -> str:
    def geyo(m: re.Match[str]) -> str:
        prev = m.group(1)
        if _final(prev) != _T_L:
            return m.group(0)
        return _set_final(prev, 0) + "겠습니다"

    text = _GEYO_RE.sub(geyo, text)
    return _UP_RE.sub(lambda m: _UP_MAP[m.group(1)], text)


def shift_call(turns: list[str], share: float, rng: random.Random) -> list[str]:
    """With probability share, every turn of the call one level down or up (a fair coin)."""
    if share <= 0 or rng.random() >= share:
        return turns
    f = shift_down if rng.random() < 0.5 else shift_up
    return [f(t) for t in turns]


# Formal (하십시오체) and honorific call-centre endings, for measuring a call's speech level.
_FORMAL_RE = re.compile(r"니다|니까|십시오|고객님|드리겠|드릴게|세요")


def formal_rate(text: str) -> float:
    """Formal endings per 1,000 non-space characters (scripts/register_auc.py)."""
    n = len(text) - text.count(" ")
    return 1000.0 * len(_FORMAL_RE.findall(text)) / max(1, n)
