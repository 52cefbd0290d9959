"""Variant generation: base dialogue -> rendered turns -> STT-noised segments -> calls.jsonl."""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basefmt import Alt, Dialogue, Slot, parse_base
from noise import BACKCHANNELS, NoiseParams, draw_params, noisy_turn
from register import shift_call
from slots import SlotLists

CUT_PROB = 0.25          # share of calls cut before their last turn (both classes alike)
EXCERPT_PROB = 0.36      # share of calls that are excerpts: start and end mid-call, often mid-sentence,
                         # as real transcripts do (a recording starts late, a file is split)
MAX_ATTEMPTS = 6         # redraws when a variant's text equals an earlier one
_HANGUL_RE = re.compile(r"[가-힣]")


def rng_for(seed: int, *key: object) -> random.Random:
    """A generator keyed by seed and a stable key (not Python's salted hash)."""
    h = hashlib.sha256(":".join(map(str, (seed, *key))).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


# ---- rendering -------------------------------------------------------------------------------

def _has_batchim(ch: str) -> bool | None:
    if "가" <= ch <= "힣":
        return (ord(ch) - 0xAC00) % 28 != 0
    if ch.isdigit():
        return ch in "013678"  # 영 일 삼 육 칠 팔
    return None


def _is_rieul(ch: str) -> bool:
    if "가" <= ch <= "힣":
        return (ord(ch) - 0xAC00) % 28 == 8
    return ch in "178"


_PARTICLE_RE = re.compile(r"^(을|를|은|는|이에요|예요|이|가|과|와|으로|로)(?=$|[\s.,?!~])")
_PAIRS = {"을": ("을", "를"), "를": ("을", "를"), "은": ("은", "는"), "는": ("은", "는"), "이": ("이", "가"),
          "가": ("이", "가"), "과": ("과", "와"), "와": ("과", "와"), "이에요": ("이에요", "예요"),
          "예요": ("이에요", "예요")}


def fix_particle(value: str, following: str) -> str:
    """Make a particle right after a slot agree with the value's last syllable (김민준을 / 이수아를)."""
    m = _PARTICLE_RE.match(following)
    if not m or not value:
        return following
    last = value.rstrip()[-1]
    b = _has_batchim(last)
    if b is None:
        return following
    part = m.group(1)
    if part in ("으로", "로"):
        new = "으로" if (b and not _is_rieul(last)) else "로"
    else:
        new = _PAIRS[part][0 if b else 1]
    return new + following[m.end():]


def render_turn(parts: tuple[Any, ...], values: dict[str, str], lists: SlotLists, rng: random.Random) -> str:
    flat: list[Any] = []
    for p in parts:
        if isinstance(p, Alt):
            flat.extend(rng.choice(p.options))
        else:
            flat.append(p)
    out: list[str] = []
    prev_value: str | None = None
    for p in flat:
        if isinstance(p, Slot):
            if p.name not in values:
                v = lists.draw(p.name, rng)
                # {NAME} and {CALLER} are different people
                other = {"NAME": "CALLER", "CALLER": "NAME"}.get(p.name)
                while other and values.get(other) == v:
                    v = lists.draw(p.name, rng)
                values[p.name] = v
            prev_value = values[p.name]
            out.append(prev_value)
        else:
            if prev_value is not None:
                if prev_value.endswith("구") and p.startswith("구청"):
                    p = p[1:]  # {DISTRICT}구청 with 강남구 -> 강남구청
                p = fix_particle(prev_value, p)
            out.append(p)
            prev_value = None
    return re.sub(r"\s+", " ", "".join(out)).strip()


# ---- one call --------------------------------------------------------------------------------

@dataclass
class Call:
    id: str
    group: str
    family: str
    label: str
    text: str
    segments: list[dict[str, Any]]
    cut: bool
    noise: NoiseParams
    excerpt: bool = False

    def json_line(self) -> str:
        return json.dumps({"id": self.id, "group": self.group, "family": self.family, "label": self.label,
                           "text": self.text, "segments": self.segments}, ensure_ascii=False)


def _syllables(s: str) -> int:
    return len(_HANGUL_RE.findall(s)) + sum(c.isdigit() for c in s) + sum(c.isascii() and c.isalpha() for c in s) // 2


def make_call(d: Dialogue, v: int, seed: int, lists: SlotLists, attempt: int = 0, width: int = 2,
              register_shift: float = 0.0) -> Call:
    rng = rng_for(seed, d.id, v, attempt)
    values: dict[str, str] = {}
    turns = [render_turn(t.parts, values, lists, rng) for t in d.turns]
    if register_shift > 0:
        # Its own generator, so that a corpus without the shift is the same call for call.
        turns = shift_call(turns, register_shift, rng_for(seed, d.id, v, attempt, "register"))
    p = draw_params(rng)
    excerpt = len(turns) >= 6 and rng.random() < EXCERPT_PROB
    cut = False
    if excerpt:
        turns = excerpt_turns(turns, rng)
    else:
        cut = len(turns) > 4 and rng.random() < CUT_PROB
        if cut:
            turns = turns[:rng.randint(max(3, math.ceil(len(turns) * 0.4)), len(turns) - 1)]
    noisy: list[str] = []
    for t in turns:
        n = noisy_turn(t, p, rng)
        if n:
            noisy.append(n)
        if rng.random() < p.backchannel:
            noisy.append(rng.choice(BACKCHANNELS))
    # Long turns are sometimes cut mid-sentence by the STT segmenter.
    pieces: list[str] = []
    for t in noisy:
        w = t.split()
        if len(w) >= 8 and rng.random() < 0.3:
            k = rng.randint(3, len(w) - 3)
            pieces += [" ".join(w[:k]), " ".join(w[k:])]
        else:
            pieces.append(t)
    rate = rng.uniform(4.0, 5.0)  # syllables per second
    clock = round(rng.uniform(0.0, 1.5), 2)
    segments: list[dict[str, Any]] = []
    i = 0
    while i < len(pieces):
        k = rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0]
        group = pieces[i:i + k]
        i += k
        start = clock
        for j, piece in enumerate(group):
            if j:
                clock += rng.uniform(0.1, 0.6)  # pause inside a segment
            clock += max(0.3, _syllables(piece) / rate)
        segments.append({"start": round(start, 2), "end": round(clock, 2), "text": " ".join(group)})
        clock += rng.uniform(0.2, 1.2)  # pause between segments
    text = " ".join(s["text"] for s in segments)
    return Call(id=f"{d.id}-v{v:0{width}d}", group=d.id, family=d.family, label=d.label, text=text,
                segments=segments, cut=cut, noise=p, excerpt=excerpt)


def excerpt_turns(turns: list[str], rng: random.Random) -> list[str]:
    """A stretch from the middle of a call: it starts at a later turn (60%: inside that turn, so the
    first words are lost) and ends before the last turn or inside it; at least 3 turns are kept.
    Label and family stay the base dialogue's: an excerpt of a scam before its ask is still a scam."""
    n = len(turns)
    start = rng.randint(1, max(1, n - 3))
    end = rng.randint(min(n, start + 3), n)
    out = list(turns[start:end])
    if rng.random() < 0.6:
        w = out[0].split()
        if len(w) >= 4:
            out[0] = " ".join(w[rng.randint(1, len(w) // 2):])
    if rng.random() < 0.5:
        w = out[-1].split()
        if len(w) >= 4:
            out[-1] = " ".join(w[:rng.randint(len(w) // 2, len(w) - 1)])
    return out


def variants_per_class(dialogues: list[Dialogue], min_calls: int) -> dict[str, int]:
    """Enough variants per base that each class has at least min_calls/2 calls (balanced classes)."""
    n = Counter(d.label for d in dialogues)
    return {lab: max(1, math.ceil(min_calls / 2 / k)) for lab, k in sorted(n.items())}


def generate(dialogues: list[Dialogue], lists: SlotLists, seed: int,
             variants: int | dict[str, int], register_shift: float = 0.0) -> tuple[list[Call], int]:
    """All calls, in base order; returns (calls, duplicates that survived redraws)."""
    per = variants if isinstance(variants, dict) else {d.label: variants for d in dialogues}
    width = max(2, len(str(max(per.values(), default=1) - 1)))
    calls: list[Call] = []
    dups = 0
    for d in sorted(dialogues, key=lambda x: (x.label, x.family, x.id)):
        seen: set[str] = set()  # per base dialogue, so adding a dialogue never changes another's calls
        for v in range(per[d.label]):
            for attempt in range(MAX_ATTEMPTS):
                c = make_call(d, v, seed, lists, attempt, width, register_shift)
                if c.text not in seen:
                    break
            else:
                dups += 1
            seen.add(c.text)
            calls.append(c)
    return calls, dups


# ---- stats and driver ------------------------------------------------------------------------

def _quartiles(xs: list[float]) -> dict[str, float]:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return {"n": len(xs), "mean": round(statistics.fmean(xs), 1), "min": min(xs), "q1": q[0],
            "median": q[1], "q3": q[2], "max": max(xs)}


def build_stats(calls: list[Call], dialogues: list[Dialogue], seed: int, variants: int | dict[str, int],
                dups: int) -> dict[str, Any]:
    from shortcut import shortcut_checks
    per_class: dict[str, int] = Counter(c.label for c in calls)
    per_family: dict[str, dict[str, int]] = defaultdict(dict)
    fam_calls = Counter((c.label, c.family) for c in calls)
    fam_dlgs = Counter((d.label, d.family) for d in dialogues)
    for (label, fam), n in sorted(fam_calls.items()):
        per_family[label][fam] = n
    length = {lab: _quartiles([len(c.text) for c in calls if c.label == lab]) for lab in sorted(per_class)}
    strength = {lab: _quartiles([c.noise.strength for c in calls if c.label == lab]) for lab in sorted(per_class)}
    cut = {lab: round(sum(c.cut for c in calls if c.label == lab) / max(1, per_class[lab]), 3) for lab in per_class}
    excerpt = {lab: round(sum(c.excerpt for c in calls if c.label == lab) / max(1, per_class[lab]), 3) for lab in per_class}
    return {
        "seed": seed, "variants_per_base": variants, "base_dialogues": len(dialogues),
        "base_per_family": {f"{lab}/{fam}": n for (lab, fam), n in sorted(fam_dlgs.items())},
        "calls": len(calls), "distinct_texts": len({c.text for c in calls}), "duplicates_after_redraw": dups,
        "calls_per_class": dict(sorted(per_class.items())), "calls_per_family": per_family,
        "chars_per_class": length, "noise_strength_per_class": strength, "cut_share_per_class": cut,
        "excerpt_share_per_class": excerpt,
        "shortcut": shortcut_checks([(c.group, c.label, c.text) for c in calls]),
    }


def format_report(st: dict[str, Any]) -> str:
    L: list[str] = []
    L.append(f"base dialogues: {st['base_dialogues']}  variants/base: {st['variants_per_base']}  "
             f"calls: {st['calls']}  distinct: {st['distinct_texts']}")
    L.append("calls per class: " + ", ".join(f"{k}={v}" for k, v in st["calls_per_class"].items()))
    for lab, fams in st["calls_per_family"].items():
        L.append(f"  {lab}: " + ", ".join(f"{f}={n}" for f, n in fams.items()))
    L.append("chars per class (mean / q1 / median / q3 / max):")
    for lab, q in st["chars_per_class"].items():
        L.append(f"  {lab:9s} {q['mean']:8.1f} {q['q1']:8.1f} {q['median']:8.1f} {q['q3']:8.1f} {q['max']:6}")
    L.append("noise strength median per class: " + ", ".join(f"{k}={v['median']:.3f}" for k, v in st["noise_strength_per_class"].items()))
    L.append("cut share per class: " + ", ".join(f"{k}={v}" for k, v in st["cut_share_per_class"].items()))
    L.append("excerpt share per class (starts and ends mid-call): " + ", ".join(f"{k}={v}" for k, v in st.get("excerpt_share_per_class", {}).items()))
    sc = st["shortcut"]
    if "error" in sc:
        L.append(f"shortcut checks: {sc['error']}")
        return "\n".join(L)
    L.append(f"shortcut checks (held-out by base dialogue: train {sc['train_groups']} / test {sc['test_groups']} groups, "
             f"{sc['train_calls']} / {sc['test_calls']} calls):")
    ln = sc["length"]
    L.append(f"  (a) length only (score = chars, longer = phishing): test ROC-AUC {ln['auc']:.3f} "
             f"(all calls {ln['auc_all_calls']:.3f}); accuracy {ln['accuracy']:.3f} with rule: {ln['rule']}")
    for key, name in (("nb_words", "NB whitespace tokens"), ("nb_bigrams", "NB char bigrams")):
        b = sc[key]
        L.append(f"  (b) {name}: ROC-AUC {b['auc']:.3f}  F1 {b['f1']:.3f}  accuracy {b['accuracy']:.3f}")
    L.append("  top class-skewed tokens by smoothed log-odds (train split; + = phishing):")
    for side in ("phishing", "normal"):
        L.append(f"    {side}: " + "  ".join(f"{t['token']}({t['log_odds']:+.2f},{t['n_phishing']}/{t['n_normal']})"
                                              for t in sc["top_tokens"][side]))
    if ln["auc_either_way"] > 0.7 or max(ln["auc_all_calls"], 1 - ln["auc_all_calls"]) > 0.7:
        L.append("!" * 78)
        L.append(f"!!! WARNING: length alone separates the classes (ROC-AUC {ln['auc']:.3f}, either way > 0.7).")
        L.append("!!! The corpus teaches a length shortcut: rebalance dialogue lengths per family.")
        L.append("!" * 78)
    return "\n".join(L)


def run_generate(base: Path, slots_dir: Path, out: Path, seed: int, variants: int, min_calls: int,
                 only: set[str] | None = None, register_shift: float = 0.0) -> int:
    dialogues, issues = parse_base(base)
    if only is not None and not issues:
        missing = sorted(only - {d.id for d in dialogues})
        if missing:
            print(f"--only names {len(missing)} dialogue(s) not in {base}: {', '.join(missing[:10])}")
            return 1
        dialogues = [d for d in dialogues if d.id in only]
    if issues:
        for i in issues:
            print(i)
        print(f"{len(issues)} format issue(s): fix them first (gen.py --check)")
        return 1
    if not dialogues:
        print(f"no base dialogues under {base}")
        return 1
    lists = SlotLists.load(slots_dir)
    per: int | dict[str, int] = variants if variants > 0 else variants_per_class(dialogues, min_calls)
    calls, dups = generate(dialogues, lists, seed, per, register_shift)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "calls.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for c in calls:
            f.write(c.json_line() + "\n")
    st = build_stats(calls, dialogues, seed, per, dups)
    if register_shift > 0:
        st["register_shift"] = register_shift
    with open(out / "stats.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(st, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(format_report(st))
    print(f"wrote {out / 'calls.jsonl'} and {out / 'stats.json'}")
    return 0
