"""Parser for the base-dialogue format (see corpus/README.md).

A base file holds dialogues: a header `=== <family>-NNN`, then one `A: ` / `B: `
line per turn. Turn text may contain `{SLOT}` placeholders and flat `[a|b]`
alternations. The parser never raises on bad input: it returns issues with
file:line so that a writer can fix them all in one pass.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

SLOTS: frozenset[str] = frozenset({
    "NAME", "CALLER", "SURNAME", "BANK", "CARDCO", "INSURER", "TELCO", "COURIER",
    "CITY", "DISTRICT", "AMOUNT", "SMALL_AMOUNT", "DATE", "TIME", "PHONE", "ACCOUNT",
    "CASE_NO", "DIGITS4", "ITEM", "RATE", "HOSPITAL", "COMPANY",
})
LABELS: tuple[str, ...] = ("phishing", "normal")
MIN_TURNS = 6
MAX_TURNS = 30

_ID_RE = re.compile(r"^([a-z][a-z0-9_]*)-(\d{3,})$")
_FAMILY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SLOT_RE = re.compile(r"\{([A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Slot:
    name: str


@dataclass(frozen=True)
class Alt:
    options: tuple[tuple[Union[str, Slot], ...], ...]


Part = Union[str, Slot, Alt]


@dataclass(frozen=True)
class Turn:
    speaker: str  # "A" (caller) or "B" (callee)
    raw: str
    parts: tuple[Part, ...]
    line: int


@dataclass
class Dialogue:
    id: str
    family: str
    label: str
    path: str
    line: int
    turns: list[Turn] = field(default_factory=list)


@dataclass(frozen=True)
class Issue:
    path: str
    line: int
    msg: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.msg}"


def _parse_flat(text: str, path: str, lineno: int, issues: list[Issue]) -> tuple[Union[str, Slot], ...]:
    """Split text without brackets into literals and slots."""
    out: list[Union[str, Slot]] = []
    pos = 0
    for m in _SLOT_RE.finditer(text):
        lit = text[pos:m.start()]
        if lit:
            out.append(lit)
        name = m.group(1)
        if name not in SLOTS:
            issues.append(Issue(path, lineno, f"unknown slot {{{name}}}"))
            out.append(m.group(0))
        else:
            out.append(Slot(name))
        pos = m.end()
    rest = text[pos:]
    if rest:
        out.append(rest)
    # Stray braces left in literals mean a malformed slot.
    for piece in out:
        if isinstance(piece, str) and ("{" in piece or "}" in piece) and not _SLOT_RE.fullmatch(piece):
            issues.append(Issue(path, lineno, f"stray brace in {piece!r}"))
    return tuple(out)


def parse_template(text: str, path: str = "<text>", lineno: int = 0, col0: int = 0) -> tuple[tuple[Part, ...], list[Issue]]:
    """Parse turn text into literals, slots and alternations (col0: text offset in its line, for messages)."""
    issues: list[Issue] = []
    parts: list[Part] = []
    pos = 0
    n = len(text)
    while pos < n:
        open_i = text.find("[", pos)
        close_i = text.find("]", pos)
        if close_i != -1 and (open_i == -1 or close_i < open_i):
            issues.append(Issue(path, lineno, f"unbalanced ']' at column {col0 + close_i + 1}"))
            parts.extend(_parse_flat(text[pos:close_i], path, lineno, issues))
            pos = close_i + 1
            continue
        if open_i == -1:
            parts.extend(_parse_flat(text[pos:], path, lineno, issues))
            break
        if open_i > pos:
            parts.extend(_parse_flat(text[pos:open_i], path, lineno, issues))
        end = text.find("]", open_i + 1)
        nested = text.find("[", open_i + 1)
        if end == -1:
            issues.append(Issue(path, lineno, f"unbalanced '[' at column {col0 + open_i + 1}"))
            parts.extend(_parse_flat(text[open_i + 1:], path, lineno, issues))
            break
        if nested != -1 and nested < end:
            issues.append(Issue(path, lineno, f"nested '[' at column {col0 + nested + 1}"))
            pos = nested  # resync on the inner bracket
            continue
        body = text[open_i + 1:end]
        if "|" not in body:
            issues.append(Issue(path, lineno, f"alternation without '|' at column {col0 + open_i + 1} (use [x|] for optional text)"))
        opts = tuple(_parse_flat(o, path, lineno, issues) for o in body.split("|"))
        parts.append(Alt(opts))
        pos = end + 1
    return tuple(parts), issues


def parse_file(path: Path, label: str) -> tuple[list[Dialogue], list[Issue]]:
    """Parse one base file; label comes from its directory, family from its name."""
    spath = str(path)
    family = path.stem
    issues: list[Issue] = []
    if not _FAMILY_RE.match(family):
        issues.append(Issue(spath, 0, f"family name {family!r} is not snake_case"))
    try:
        raw = path.read_bytes()
    except OSError as e:
        return [], [Issue(spath, 0, f"cannot read: {e}")]
    if raw.startswith(b"\xef\xbb\xbf"):
        issues.append(Issue(spath, 1, "file starts with a UTF-8 BOM"))
        raw = raw[3:]
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return [], [Issue(spath, 0, f"not UTF-8: {e}")]
    if "\r" in content:
        issues.append(Issue(spath, 0, "CR characters found (use LF line endings)"))
        content = content.replace("\r", "")
    dialogues: list[Dialogue] = []
    cur: Dialogue | None = None
    for lineno, line in enumerate(content.split("\n"), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("==="):
            did = s[3:].strip()
            m = _ID_RE.match(did)
            if not s.startswith("=== ") or not m:
                issues.append(Issue(spath, lineno, f"bad header {s!r} (want '=== <family>-NNN')"))
            elif m.group(1) != family:
                issues.append(Issue(spath, lineno, f"id {did!r} does not start with file family {family!r}"))
            cur = Dialogue(id=did, family=family, label=label, path=spath, line=lineno)
            dialogues.append(cur)
            continue
        if cur is None:
            issues.append(Issue(spath, lineno, "text before the first '=== <id>' header"))
            continue
        if len(line) < 3 or line[:3] not in ("A: ", "B: "):
            issues.append(Issue(spath, lineno, f"turn line must start with 'A: ' or 'B: ': {line[:30]!r}"))
            continue
        body = line[3:]
        text = body.strip()
        col0 = 3 + len(body) - len(body.lstrip())
        if not text:
            issues.append(Issue(spath, lineno, "empty turn"))
            continue
        parts, tissues = parse_template(text, spath, lineno, col0)
        issues.extend(tissues)
        cur.turns.append(Turn(speaker=line[0], raw=text, parts=parts, line=lineno))
    for d in dialogues:
        if not (MIN_TURNS <= len(d.turns) <= MAX_TURNS):
            issues.append(Issue(spath, d.line, f"{d.id}: {len(d.turns)} turns (want {MIN_TURNS}-{MAX_TURNS})"))
    return dialogues, issues


def parse_base(base: Path) -> tuple[list[Dialogue], list[Issue]]:
    """Parse every base/<label>/<family>.txt; check ids are unique corpus-wide."""
    dialogues: list[Dialogue] = []
    issues: list[Issue] = []
    if not base.is_dir():
        return [], [Issue(str(base), 0, "base directory not found")]
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        if sub.name not in LABELS:
            issues.append(Issue(str(sub), 0, f"unknown label directory (want one of {LABELS})"))
            continue
    for label in LABELS:
        d = base / label
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.is_dir() or f.name.startswith("."):
                continue
            if f.suffix != ".txt":
                issues.append(Issue(str(f), 0, "not a .txt file (ignored)"))
                continue
            ds, iss = parse_file(f, label)
            dialogues.extend(ds)
            issues.extend(iss)
    seen: dict[str, Dialogue] = {}
    for dl in dialogues:
        if dl.id in seen:
            first = seen[dl.id]
            issues.append(Issue(dl.path, dl.line, f"duplicate id {dl.id!r} (first at {first.path}:{first.line})"))
        else:
            seen[dl.id] = dl
    issues.sort(key=lambda i: (i.path, i.line))
    return dialogues, issues


def plain_length(turn: Turn) -> int:
    """Approximate rendered length: first option of each alternation, slots as 3 chars."""
    n = 0
    for p in turn.parts:
        if isinstance(p, str):
            n += len(p)
        elif isinstance(p, Slot):
            n += 3
        else:
            opt = p.options[0]
            n += sum(len(x) if isinstance(x, str) else 3 for x in opt)
    return n
