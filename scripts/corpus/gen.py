#!/usr/bin/python3
"""Corpus generator: base dialogues -> STT-like synthetic calls.

  /usr/bin/python3 scripts/corpus/gen.py --check [--base corpus/base]
  /usr/bin/python3 scripts/corpus/gen.py --out DIR --seed 1 [--variants N]

See corpus/README.md for the format, the slot lists and the noise model.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overlap  # noqa: E402
from basefmt import Dialogue, Issue, parse_base, plain_length  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _bucket(n: int) -> str:
    return "S" if n <= 10 else ("M" if n <= 18 else "L")


def check_table(dialogues: list[Dialogue]) -> str:
    """Per-family/per-class table: count, turns min/median/max, median chars, S/M/L spread."""
    groups: dict[tuple[str, str], list[Dialogue]] = defaultdict(list)
    for d in dialogues:
        groups[(d.label, d.family)].append(d)
        groups[(d.label, "*ALL*")].append(d)
    rows = [("class", "family", "dlgs", "turns min/med/max", "chars med", "S/M/L")]
    for (label, fam) in sorted(groups, key=lambda k: (k[0], k[1] == "*ALL*", k[1])):
        ds = groups[(label, fam)]
        turns = [len(d.turns) for d in ds]
        chars = [sum(plain_length(t) for t in d.turns) for d in ds]
        b = defaultdict(int)
        for t in turns:
            b[_bucket(t)] += 1
        rows.append((label, fam, str(len(ds)),
                     f"{min(turns)}/{statistics.median(turns):g}/{max(turns)}",
                     f"{statistics.median(chars):g}", f"{b['S']}/{b['M']}/{b['L']}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def run_check(base: Path, slots: Path | None = None) -> int:
    dialogues, issues = parse_base(base)
    for iss in issues:
        print(iss)
    if dialogues:
        print(check_table(dialogues))
    errors = len(issues)
    # Near copies: word 4-gram overlap of first-option expansions (overlap.py).
    pairs = overlap.similar_pairs(dialogues)
    copies = overlap.near_copies(pairs)
    for p in copies:
        print(f"error: near-copy dialogues {p.a} and {p.b}: {p.overlap:.3f} of the smaller one's word 4-grams shared "
              f"(> {overlap.NEAR_COPY_MAX})")
    errors += len(copies)
    print(f"most similar base dialogue pairs (shared word 4-grams / smaller set; error above {overlap.NEAR_COPY_MAX}):")
    for p in pairs[:10]:
        print(f"  {p}")
    if not pairs:
        print("  (no pair shares a 4-gram)")
    # Ownership: slots used by one class only (warning); fillers or noise that could see the label (error).
    for w in overlap.slot_warnings(dialogues):
        print(w)
    import noise  # noqa: E402  (stdlib-only module of the generator)
    gen_src = (Path(__file__).resolve().parent / "generate.py").read_text(encoding="utf-8")
    own = overlap.noise_errors(noise, gen_src) + (overlap.slot_dir_errors(slots) if slots else [])
    for e in own:
        print(f"error: {e}")
    errors += len(own)
    print(f"{len(dialogues)} dialogues, {errors} issue(s)")
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="parse base files, report errors and stats")
    ap.add_argument("--base", type=Path, default=REPO / "corpus" / "base")
    ap.add_argument("--slots", type=Path, default=REPO / "corpus" / "slots")
    ap.add_argument("--out", type=Path, help="output directory for calls.jsonl and stats.json")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", type=int, default=0, help="variants per base dialogue (0: per class, enough for >= --min-calls/2 calls in each class)")
    ap.add_argument("--min-calls", type=int, default=4000)
    ap.add_argument("--only", type=Path, help="generate from the base dialogues listed in this file only "
                    "(one id per line, # comments): a named training set such as corpus/sets/*.txt")
    ap.add_argument("--register-shift", type=float, default=0.0, metavar="P",
                    help="rewrite this share of the calls one speech level up or down (합니다 <-> 해요; "
                         "the direction by a coin, never by the label): scripts/corpus/register.py")
    args = ap.parse_args(argv)
    if not 0 <= args.register_shift <= 1:
        ap.error(f"--register-shift must be within [0, 1], not {args.register_shift}")
    if args.check:
        return run_check(args.base, args.slots)
    if args.out is None:
        ap.error("need --check or --out DIR")
    from generate import run_generate  # noqa: E402  (heavier; only for generation)
    only = None
    if args.only is not None:
        only = {ln.split("#", 1)[0].strip() for ln in args.only.read_text(encoding="utf-8").splitlines()} - {""}
    return run_generate(args.base, args.slots, args.out, args.seed, args.variants, args.min_calls, only,
                        args.register_shift)


if __name__ == "__main__":
    sys.exit(main())
