"""Korean number words: sino-Korean numerals, digit-by-digit reading, native hour words."""
from __future__ import annotations

import re

_DIG = "영일이삼사오육칠팔구"
_SPOKEN_DIG = "공일이삼사오육칠팔구"  # phone/account digits are read with 공 for 0
_SMALL_UNITS = ((1000, "천"), (100, "백"), (10, "십"))
_BIG_UNITS = ((10**12, "조"), (10**8, "억"), (10**4, "만"))
_NATIVE_HOURS = {1: "한", 2: "두", 3: "세", 4: "네", 5: "다섯", 6: "여섯", 7: "일곱", 8: "여덟",
                 9: "아홉", 10: "열", 11: "열한", 12: "열두"}


def _under_10000(n: int) -> str:
    out = []
    for v, u in _SMALL_UNITS:
        q, n = divmod(n, v)
        if q:
            out.append(("" if q == 1 else _DIG[q]) + u)
    if n:
        out.append(_DIG[n])
    return "".join(out)


def sino(n: int, spaced: bool = True) -> str:
    """3500000 -> '삼백오십만' ; 35000 -> '삼만 오천' (spaced between 만/억 groups)."""
    if n == 0:
        return "영"
    groups = []
    for v, u in _BIG_UNITS:
        q, n = divmod(n, v)
        if q:
            # 만 alone is read '만', not '일만'
            groups.append(("" if (q == 1 and u == "만") else _under_10000(q)) + u)
    if n:
        groups.append(_under_10000(n))
    return (" " if spaced else "").join(groups)


def spoken_digits(s: str) -> str:
    """'010-1234' -> '공일공 일이삼사' : digits read one by one, separators become spaces."""
    out = []
    for ch in s:
        if ch.isdigit():
            out.append(_SPOKEN_DIG[int(ch)])
        elif ch in "- ":
            out.append(" ")
        else:
            out.append(ch)
    return re.sub(r" +", " ", "".join(out)).strip()


def native_hour(h: int) -> str | None:
    return _NATIVE_HOURS.get(h)


_NUMWORD_VAL = {c: i for i, c in enumerate(_DIG) if i}
_NUMWORD_VAL["영"] = 0
_NUMWORD_VAL["공"] = 0


def parse_sino(s: str) -> int | None:
    """Inverse of sino(); None when s is not a well-formed sino-Korean numeral."""
    s = s.replace(" ", "")
    if not s:
        return None
    total = 0
    group = 0
    digit: int | None = None
    small = {"십": 10, "백": 100, "천": 1000}
    big = {"만": 10**4, "억": 10**8, "조": 10**12}
    for ch in s:
        if ch in _NUMWORD_VAL:
            if digit is not None:
                return None
            digit = _NUMWORD_VAL[ch]
        elif ch in small:
            group += (1 if digit is None else digit) * small[ch]
            digit = None
        elif ch in big:
            if digit is not None:
                group += digit
            digit = None
            total += (group or 1) * big[ch]
            group = 0
        else:
            return None
    if digit is not None:
        group += digit
    return total + group


def group_digits(n: int) -> str:
    return f"{n:,}"


def mixed_man(n: int) -> str | None:
    """3500000 -> '350만' ; 45000 -> '4만 5천' ; None when not expressible that way."""
    if n >= 10**8 and n % 10**8 == 0:
        return f"{n // 10**8}억"
    if n >= 10**8 and n % 10**4 == 0:
        return f"{n // 10**8}억 {n % 10**8 // 10**4:,}만"
    if n >= 10**4 and n % 10**4 == 0:
        return f"{n // 10**4:,}만"
    if n >= 10**4 and n % 1000 == 0 and n < 10**6:
        return f"{n // 10**4}만 {n % 10**4 // 1000}천"
    return None
