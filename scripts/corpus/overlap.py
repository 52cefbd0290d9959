"""Near-copy and class-ownership checks for `gen.py --check` (stdlib only).

Near copies: every base dialogue is expanded once — the FIRST option of every alternation, slots
kept as `{SLOT}` tokens, writer's punctuation removed — into a word sequence, and two dialogues
whose sets of word 4-grams overlap by more than half of the smaller set,

    |4grams(a) & 4grams(b)| / min(|4grams(a)|, |4grams(b)|) > 0.5,

are an error naming both ids. Pairs are counted through an inverted index (4-gram -> dialogues),
and a pair is only touched through 4-grams it shares (see similar_pairs for how boilerplate
4-grams used by many dialogues are kept from making this quadratic).

Ownership: a slot (hence every value in its list) or a filler used by one class only would be a
class cue that the model can learn instead of intent. Slot lists are one file per slot for both
classes; a slot that only one class's dialogues use is reported as a warning with its counts.
The noise model's fillers and backchannels are checked structurally: they must be plain
sequences (not keyed by anything), no noise function may take a label, and the generator must
not pass anything label-derived to them; a violation is an error.
"""
from __future__ import annotations

import ast
import inspect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from basefmt import LABELS, SLOTS, Alt, Dialogue, Slot

NGRAM = 4
NEAR_COPY_MAX = 0.5
_PUNCT = re.compile(r"[.,?!~…·\"'“”‘’()]")


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    shared: int
    n_a: int
    n_b: int

    @property
    def overlap(self) -> float:
        return self.shared / max(1, min(self.n_a, self.n_b))

    def __str__(self) -> str:
        return f"{self.overlap:.3f}  {self.a}  {self.b}  ({self.shared} shared of {self.n_a}/{self.n_b} 4-grams)"


def first_option_words(d: Dialogue) -> list[str]:
    """The dialogue as one word sequence: first option of each alternation, slots as `{SLOT}`."""
    words: list[str] = []
    for t in d.turns:
        pieces: list[str] = []
        for p in t.parts:
            seq = p.options[0] if isinstance(p, Alt) else (p,)
            for x in seq:
                # Spaces around slot tokens so that `{NAME}씨` and `{NAME} 씨` read alike.
                pieces.append(f" {{{x.name}}} " if isinstance(x, Slot) else x)
        words.extend(_PUNCT.sub(" ", "".join(pieces)).split())
    return words


def ngrams(words: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def similar_pairs(dialogues: list[Dialogue], top: int = 10, limit: float = NEAR_COPY_MAX) -> list[Pair]:
    """Pairs sharing 4-grams, most similar first: exact for every pair above min(limit, the top-th best).

    Inverted index 4-gram -> dialogues. Pairs are counted (Counter.update, in C) through the
    4-grams that at most `common` dialogues use; a pair that shares only common (boilerplate)
    4-grams has overlap <= c/|s| for its smaller dialogue s with c common 4-grams, so only
    dialogues with c/|s| above the bound are compared again through their common 4-grams.
    """
    grams = [ngrams(first_option_words(d)) for d in dialogues]
    n = len(dialogues)
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, gs in enumerate(grams):
        for g in gs:
            index[g].append(i)
    common = max(32, n // 100)
    freq = [{g for g in gs if len(index[g]) > common} for gs in grams]
    shared: dict[tuple[int, int], int] = {}

    def visit(i: int, gs: Iterable[tuple[str, ...]]) -> None:
        c: Counter[int] = Counter()
        for g in gs:
            c.update(index[g])
        for j in c:
            if j != i:
                key = (i, j) if i < j else (j, i)
                if key not in shared:
                    shared[key] = len(grams[i] & grams[j])

    for i, gs in enumerate(grams):
        visit(i, (g for g in gs if g not in freq[i]))
    pairs = [Pair(dialogues[i].id, dialogues[j].id, k, len(grams[i]), len(grams[j])) for (i, j), k in shared.items()]
    pairs.sort(key=lambda p: -p.overlap)
    bound = min(limit, pairs[top - 1].overlap if len(pairs) >= top else 0.0)
    heavy = [i for i in range(n) if freq[i] and len(freq[i]) / len(grams[i]) > bound]
    if heavy:
        for i in heavy:
            visit(i, freq[i])
        pairs = [Pair(dialogues[i].id, dialogues[j].id, k, len(grams[i]), len(grams[j])) for (i, j), k in shared.items()]
    pairs.sort(key=lambda p: (-p.overlap, -p.shared, p.a, p.b))
    return pairs


def near_copies(pairs: Iterable[Pair], limit: float = NEAR_COPY_MAX) -> list[Pair]:
    return [p for p in pairs if p.overlap > limit]


def slot_use(dialogues: list[Dialogue]) -> dict[str, Counter[str]]:
    """slot -> {label: dialogues using it anywhere (any alternation option)}."""
    use: dict[str, Counter[str]] = {s: Counter() for s in sorted(SLOTS)}
    for d in dialogues:
        seen: set[str] = set()
        for t in d.turns:
            for p in t.parts:
                opts = p.options if isinstance(p, Alt) else ((p,),)
                for opt in opts:
                    for x in opt:
                        if isinstance(x, Slot):
                            seen.add(x.name)
        for s in seen:
            use.setdefault(s, Counter())[d.label] += 1
    return use


def slot_warnings(dialogues: list[Dialogue]) -> list[str]:
    labels = sorted({d.label for d in dialogues})
    if len(labels) < 2:
        return []
    out = []
    for s, c in slot_use(dialogues).items():
        used = [lab for lab in LABELS if c[lab]]
        counts = ", ".join(f"{lab} {c[lab]}" for lab in LABELS)
        if len(used) == 1:
            out.append(f"warning: slot {{{s}}} is used by {used[0]} dialogues only ({counts})")
        elif not used:
            out.append(f"warning: slot {{{s}}} is used by no dialogue")
    return out


def _mentions_label(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and "label" in n.id.lower():
            return True
        if isinstance(n, ast.Attribute) and "label" in n.attr.lower():
            return True
        if isinstance(n, ast.Constant) and n.value in LABELS:
            return True
    return False


def noise_errors(noise_mod: object, generate_src: str | None) -> list[str]:
    """Errors if fillers/backchannels or any noise step can depend on the call's class."""
    errs: list[str] = []
    for name in ("FILLERS", "BACKCHANNELS"):
        v = getattr(noise_mod, name, None)
        if not isinstance(v, (tuple, list)) or not all(isinstance(x, str) for x in v):
            errs.append(f"noise.{name} must be one flat list of strings shared by both classes, got {type(v).__name__}")
    funcs = {n: f for n, f in vars(noise_mod).items()
             if inspect.isfunction(f) and f.__module__ == getattr(noise_mod, "__name__", None)}
    for n, f in sorted(funcs.items()):
        for pname in inspect.signature(f).parameters:
            if "label" in pname.lower() or "class" in pname.lower():
                errs.append(f"noise.{n} takes {pname!r}: the noise model must not see the label")
    if generate_src is not None:
        watched = set(funcs) | {"FILLERS", "BACKCHANNELS"}
        for node in ast.walk(ast.parse(generate_src)):
            if not isinstance(node, ast.Call):
                continue
            fname = node.func.id if isinstance(node.func, ast.Name) else (
                node.func.attr if isinstance(node.func, ast.Attribute) else "")
            args = list(node.args) + [k.value for k in node.keywords]
            touches = fname in watched or any(
                isinstance(n, ast.Name) and n.id in watched for a in args for n in ast.walk(a))
            if touches and any(_mentions_label(a) for a in args):
                errs.append(f"generate.py:{node.lineno}: {fname or 'call'}(...) gets a label-derived argument "
                            "next to the noise model / fillers")
    return errs


def slot_dir_errors(slots_dir: Path) -> list[str]:
    """Slot lists are one file per slot for both classes: no per-class subdirectories or files."""
    if not slots_dir.is_dir():
        return []
    errs = []
    for p in sorted(slots_dir.iterdir()):
        low = p.name.lower()
        if p.is_dir() or any(lab in low for lab in LABELS):
            errs.append(f"{p}: slot values must be shared by both classes (no per-class lists)")
    return errs
