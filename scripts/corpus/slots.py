"""Slot value lists (corpus/slots/<SLOT>.txt) and drawing values from them.

A list line is either a literal value or a generator:
  @name                   SURNAME + GIVEN
  @digits PATTERN         '#' -> random digit, everything else kept ('*' is a mask)
  @spoken PATTERN         like @digits, then read digit by digit (공일공 ...)
  @money MIN MAX STEP     a random amount, rendered in one of several spoken/written styles
  @rate MIN MAX           a random rate with one decimal, rendered in several styles
Every line (literal or generator) is equally likely. The lists are shared by both classes.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from basefmt import SLOTS
from numko import group_digits, mixed_man, sino, spoken_digits

HELPER_LISTS = ("GIVEN",)


class SlotError(Exception):
    """A slot list is missing or malformed."""


@dataclass(frozen=True)
class SlotLists:
    lists: dict[str, tuple[str, ...]]

    @classmethod
    def load(cls, d: Path) -> "SlotLists":
        lists: dict[str, tuple[str, ...]] = {}
        for name in sorted(SLOTS | set(HELPER_LISTS)):
            f = d / f"{name}.txt"
            if not f.is_file():
                raise SlotError(f"missing slot list {f}")
            vals = tuple(line.strip() for line in f.read_text(encoding="utf-8").split("\n")
                         if line.strip() and not line.strip().startswith("#"))
            if not vals:
                raise SlotError(f"empty slot list {f}")
            lists[name] = vals
        return cls(lists)

    def draw(self, slot: str, rng: random.Random) -> str:
        line = rng.choice(self.lists[slot])
        if not line.startswith("@"):
            return line
        kind, _, arg = line.partition(" ")
        if kind == "@name":
            return rng.choice(self.lists["SURNAME"]) + rng.choice(self.lists["GIVEN"])
        if kind == "@digits":
            return _fill_digits(arg, rng)
        if kind == "@spoken":
            return spoken_digits(_fill_digits(arg, rng))
        if kind == "@money":
            lo, hi, step = (int(x) for x in arg.split())
            return render_money(rng.randrange(lo, hi + 1, step) // step * step or step, rng)
        if kind == "@rate":
            lo, hi = (float(x) for x in arg.split())
            return render_rate(round(rng.uniform(lo, hi), 1), rng)
        raise SlotError(f"unknown generator {line!r} in slot {slot}")


def _fill_digits(pattern: str, rng: random.Random) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else c for c in pattern)


def render_money(n: int, rng: random.Random) -> str:
    """One amount, several surface forms: 3,000,000원 / 300만 원 / 삼백만 원 / 삼백만원."""
    forms = [f"{group_digits(n)}원", f"{sino(n)} 원", f"{sino(n, spaced=False)}원"]
    m = mixed_man(n)
    if m:
        forms += [f"{m} 원", f"{m}원"]
    return rng.choice(forms)


def render_rate(r: float, rng: random.Random) -> str:
    whole, frac = divmod(round(r * 10), 10)
    txt = f"{whole}.{frac}" if frac else f"{whole}"
    words = sino(whole) + (f" 점 {sino(frac)}" if frac else "")
    return rng.choice([f"{txt}퍼센트", f"{txt}%", f"{txt} 프로", f"{words} 퍼센트", f"{words} 프로", f"연 {txt}퍼센트"])
