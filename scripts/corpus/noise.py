"""STT noise model. Parameters are drawn per call from one distribution that never sees the label.

Order per call: number surface forms -> masking -> misheard terms -> punctuation -> fillers,
repetitions, dropped syllables -> spacing errors. See corpus/README.md for the parameters.
"""
from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass

from numko import native_hour, parse_sino, sino, spoken_digits
from slots import render_money

# Near-homophones an STT engine produces for finance / legal words (correct -> misheard forms).
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "발급을": ("발그를",), "발급": ("발금", "발끕"), "우대금리": ("오대금리", "우데금리"),
    "계좌": ("게좌", "개좌", "계자"), "대출": ("대술", "대추"), "금융감독원": ("금융감동원", "금융감도권"),
    "수사관": ("수사간", "수사과"), "명의": ("명이", "명으"), "이체": ("이채", "이제"),
    "검찰청": ("검찰정", "검창청"), "상환": ("상한", "상황"), "안전계좌": ("안정계좌", "안전게좌"),
    "대환대출": ("대한대출", "대환대술"), "저금리": ("저그리", "저금니"), "보이스피싱": ("보이스비싱", "보이스피씽"),
    "통장": ("통짱", "통잔"), "비밀번호": ("비밀번오", "비밀버노"), "인증번호": ("인증버노", "인정번호"),
    "주민등록번호": ("주민등로번호", "주민등록버노"), "신분증": ("신분쯩", "신분정"), "녹취": ("녹치", "노취"),
    "사건": ("사껀", "사견"), "연루": ("열루", "연류"), "피의자": ("피이자", "피의짜"), "피해자": ("피해짜", "피애자"),
    "압류": ("암뉴", "압유"), "공탁금": ("공탁끔", "공탁그"), "법무사": ("범무사", "법문사"),
    "신용등급": ("신용등굽", "시뇽등급"), "송금": ("송끔", "송그"), "입금": ("임금", "입끔"),
    "출금": ("출끔", "충금"), "잔액": ("자낵", "잔엑"), "원금": ("원끔", "원그"), "이자": ("이짜",),
    "수수료": ("수수로", "수수려"), "적금": ("적끔", "저끔"), "예금": ("예끔", "애금"),
    "보험금": ("보험끔", "보엄금"), "환급": ("한급", "환금"), "보상금": ("보상끔",), "택배": ("택베", "택뻬"),
    "원격": ("원겸", "원곅"), "카드사": ("카드싸",), "금융거래": ("금뉴거래", "금융거레"),
    "본인확인": ("보닌확인", "본인화긴"), "개인정보": ("개인정버", "개인정보를"), "유출": ("유추",),
    "도용": ("도영", "도양"), "불법": ("불뻡", "불밥"), "영장": ("영짱", "연장"), "출석": ("출썩",),
    "경찰서": ("경찰써", "경창서"), "사이버수사대": ("사이버수사데",), "금감원": ("금간원", "금감언"),
    "고객센터": ("고객쎈터", "고객센타"), "상담원": ("상담언", "상다원"), "승인": ("승닌", "성인"),
    "결제": ("결재",), "연체": ("연채",), "납부": ("납뿌", "남부"), "정부지원": ("정부지언",),
    "서민금융": ("서민그뮹",), "햇살론": ("햇쌀론", "햇살롱"), "현금": ("현끔", "형금"), "인출": ("인추", "인충"),
    "가상화폐": ("가상하폐", "가상화패"), "투자": ("투짜",), "리딩방": ("리딩빵",), "대포통장": ("대포통짱", "대표통장"),
    "금리": ("금니", "끔리"), "한도": ("한또",), "만기": ("만끼",), "해지": ("해제",), "신청": ("신정", "심청"),
    "카드": ("까드",), "은행": ("으냉", "은앵"), "보험": ("보엄",), "검사": ("검싸",), "지검": ("지금",),
    "주민센터": ("주민쎈터",), "세무서": ("세무소",), "어플": ("업플", "어플리"), "설치": ("설지",),
}
_HOMO_RE = re.compile("|".join(sorted(map(re.escape, HOMOPHONES), key=len, reverse=True)))

FILLERS: tuple[str, ...] = ("어", "음", "네네", "아 예", "그 뭐냐", "저기", "아", "그러니까", "예예", "뭐", "이제", "어어", "그")
BACKCHANNELS: tuple[str, ...] = ("네", "네네", "예", "음", "아 네", "네 네 네", "어", "그렇죠", "예예")
# Decimal points and thousands separators inside numbers are not punctuation.
_PUNCT_RE = re.compile(r"[?!~…·\"'“”‘’()]|(?<!\d)[.,]|[.,](?!\d)")
_HANGUL = re.compile(r"[가-힣]")


@dataclass(frozen=True)
class NoiseParams:
    strength: float
    punct_mode: str      # strip | sparse | restore | turn_end
    num_switch: float    # P(re-render a number in another surface form)
    spoken_digits: float  # P(read a digit string digit by digit)
    mask_mode: str       # none | star | zero
    homophone: float     # P(a known term is misheard)
    filler_start: float  # P(filler at a turn start)
    filler_mid: float    # P(filler between two words)
    backchannel: float   # P(a backchannel after a turn)
    repeat: float        # P(a word is repeated)
    drop: float          # P(a syllable of a word is dropped)
    merge: float         # P(a space disappears: 붙여쓰기)
    split: float         # P(a word is split by a space)
    mangle: float        # P(a Hangul syllable is misheard: a jamo swapped for a near sound)
    delete: float        # P(a word is lost)
    loop: float          # P(a turn has a hallucinated loop: a short span repeated 2-6 times)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def draw_params(rng: random.Random) -> NoiseParams:
    """One call's noise. The label is deliberately not an argument."""
    s = rng.random()
    return NoiseParams(
        strength=round(s, 4),
        punct_mode=rng.choices(("strip", "sparse", "restore", "turn_end"), (0.45, 0.15, 0.25, 0.15))[0],
        num_switch=0.3 + 0.5 * rng.random(),
        spoken_digits=0.2 * rng.random(),
        mask_mode=rng.choices(("none", "star", "zero"), (0.6, 0.25, 0.15))[0],
        homophone=0.05 + 0.45 * s,
        filler_start=0.03 + 0.25 * s,
        filler_mid=0.005 + 0.06 * s,
        backchannel=0.03 + 0.2 * s,
        repeat=0.003 + 0.05 * s,
        drop=0.002 + 0.04 * s,
        merge=0.02 + 0.4 * s,
        split=0.005 + 0.08 * s,
        # Wider tail (gap 2 in scripts/README.md): real Whisper / cloud STT mangles ordinary words,
        # not only the finance terms above, loses words and loops on a phrase. The per-call extra
        # draw spreads mangling and looping independently of the other kinds of noise.
        mangle=0.005 + 0.12 * s * rng.random(),
        delete=0.005 + 0.05 * s,
        loop=0.01 + 0.12 * s * rng.random(),
    )


# ---- numbers ---------------------------------------------------------------------------------

_KNUM = "일이삼사오육칠팔구십백천만억"
_MONEY_RE = re.compile(
    r"(?<![가-힣\d,.])((?:(?:\d[\d,]*|[" + _KNUM + r"]+)\s?(?:억|만|천)?\s?)+?)\s?원(?![가-힣])")
# Month alone only before a particle or a break, so that 이월(되다) or 시월드 are left alone.
_DATE_RE = re.compile(r"(?<![가-힣\d])(\d{1,2}|[일이삼사오육칠팔구십유시]{1,3})월"
                      r"(?:\s?(\d{1,2}|[일이삼사오육칠팔구십]{1,4}?)일|(?=$|[\s.,?!]|에|까지|부터|말|초|중))")
# One pass for both directions, so an hour is never flipped twice. Native hours (세 시) only after
# 오전/오후/..., because 네 is also "yes".
_HOUR_RE = re.compile(r"(?:(오전|오후|저녁|아침|새벽|밤)\s?)?(?:(?<![\d.])(\d{1,2})\s?시(?![간작장청민스키])"
                      r"|(열한|열두|한|두|세|네|다섯|여섯|일곱|여덟|아홉|열)\s?시(?![간작장청민스키]))")
_PCT_RE = re.compile(r"(?<![\d.])(\d{1,2})(?:\.(\d))?\s?(퍼센트|프로|%)")
_KPCT_RE = re.compile(r"(?<![가-힣])([일이삼사오육칠팔구십]{1,3})(?:\s?점\s?([영일이삼사오육칠팔구]))?\s?(퍼센트|프로)")
_DIGITRUN_RE = re.compile(r"\d[\d\- ]{2,}\d")
_SPOKEN_RE = re.compile(r"(?<![가-힣])[공일이삼사오육칠팔구]{3,4}(?: [공일이삼사오육칠팔구]{3,4})+(?![가-힣])")
_NATIVE_VAL = {"한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9,
               "열": 10, "열한": 11, "열두": 12}
_SPOKEN_DIGIT_VAL = {c: str(i) for i, c in enumerate("공일이삼사오육칠팔구")}


def _num_value(s: str) -> int | None:
    """'4만 8천' / '1,200만' / '삼백만' / '3,000,000' -> int."""
    s = s.strip()
    if not s:
        return None
    if re.fullmatch(r"[\d,]+", s):
        return int(s.replace(",", "")) if s.replace(",", "").isdigit() else None
    words = re.sub(r"\d[\d,]*", lambda m: sino(int(m.group(0).replace(",", "")), spaced=False), s)
    return parse_sino(words)


def _month_word(m: int) -> str:
    return {6: "유월", 10: "시월"}.get(m, sino(m) + "월")


def switch_numbers(text: str, p: NoiseParams, rng: random.Random) -> str:
    def money(m: re.Match[str]) -> str:
        body = m.group(1)
        if not re.search(r"\d|[십백천만억]", body) or rng.random() >= p.num_switch:
            return m.group(0)
        v = _num_value(body)
        if v is None or v < 10:
            return m.group(0)
        return render_money(v, rng)

    def date(m: re.Match[str]) -> str:
        if rng.random() >= p.num_switch:
            return m.group(0)
        mon_s, day_s = m.group(1), m.group(2)
        mon = int(mon_s) if mon_s.isdigit() else {"유": 6, "시": 10}.get(mon_s) or parse_sino(mon_s)
        day = None
        if day_s:
            day = int(day_s) if day_s.isdigit() else parse_sino(day_s)
        if not mon or not 1 <= mon <= 12 or (day_s and (not day or not 1 <= day <= 31)):
            return m.group(0)
        to_words = mon_s.isdigit()  # flip the surface form
        out = _month_word(mon) if to_words else f"{mon}월"
        if day:
            out += " " + (sino(day) + "일" if to_words else f"{day}일")
        return out

    def hour(m: re.Match[str]) -> str:
        prefix = f"{m.group(1)} " if m.group(1) else ""
        if m.group(2):
            w = native_hour(int(m.group(2)))
            if w is None or rng.random() >= p.num_switch:
                return m.group(0)
            return f"{prefix}{w} 시"
        if not prefix or rng.random() >= p.num_switch:
            return m.group(0)
        return f"{prefix}{_NATIVE_VAL[m.group(3)]}시"

    def pct(m: re.Match[str]) -> str:
        if rng.random() >= p.num_switch:
            return m.group(0)
        words = sino(int(m.group(1))) + (f" 점 {sino(int(m.group(2))) if m.group(2) != '0' else '영'}" if m.group(2) else "")
        return f"{words} {rng.choice(('퍼센트', '프로'))}"

    def kpct(m: re.Match[str]) -> str:
        if rng.random() >= p.num_switch:
            return m.group(0)
        v = parse_sino(m.group(1))
        if v is None:
            return m.group(0)
        frac = f".{parse_sino(m.group(2)) or 0}" if m.group(2) else ""
        return f"{v}{frac}{rng.choice(('퍼센트', '%', ' 프로'))}"

    def spoken(m: re.Match[str]) -> str:
        if rng.random() >= p.num_switch:
            return m.group(0)
        sep = rng.choice(("-", " ", ""))
        return sep.join("".join(_SPOKEN_DIGIT_VAL[c] for c in g) for g in m.group(0).split(" "))

    def digitrun(m: re.Match[str]) -> str:
        if rng.random() >= p.spoken_digits:
            return m.group(0)
        return spoken_digits(m.group(0))

    text = _MONEY_RE.sub(money, text)
    text = _DATE_RE.sub(date, text)
    text = _HOUR_RE.sub(hour, text)
    text = _PCT_RE.sub(pct, text)
    text = _KPCT_RE.sub(kpct, text)
    text = _SPOKEN_RE.sub(spoken, text)
    text = _DIGITRUN_RE.sub(digitrun, text)
    return text


def mask_digits(text: str, p: NoiseParams, rng: random.Random) -> str:
    """Datasets mask personal numbers: runs of 4+ digits become **** or 0000."""
    if p.mask_mode == "none":
        return text
    ch = "*" if p.mask_mode == "star" else "0"

    def sub(m: re.Match[str]) -> str:
        return ch * len(m.group(0)) if rng.random() < 0.7 else m.group(0)
    return re.sub(r"\d{4,}", sub, text)


# ---- words -----------------------------------------------------------------------------------

def mishear(text: str, p: NoiseParams, rng: random.Random) -> str:
    def sub(m: re.Match[str]) -> str:
        if rng.random() >= p.homophone:
            return m.group(0)
        return rng.choice(HOMOPHONES[m.group(0)])
    return _HOMO_RE.sub(sub, text)


_QUESTION_END = re.compile(r"(까|까요|나요|가요|죠|냐|니)$")
_STATEMENT_END = re.compile(r"(다|요|죠|네요|어|아|지)$")
_CLAUSE_END = re.compile(r"(고|서|는데|데요|면|니까)$")


def punctuate(text: str, p: NoiseParams, rng: random.Random) -> str:
    """The writers' own punctuation is always removed first: its density differs by writer, hence
    by class. Marks are then re-added by rules that look only at word endings."""
    text = _PUNCT_RE.sub(" ", text)
    if p.punct_mode == "strip":
        return text
    words = text.split()
    if p.punct_mode == "sparse":
        words = [w + rng.choice((".", ",", "?", ",")) if rng.random() < 0.08 else w for w in words]
    elif p.punct_mode == "restore":
        out = []
        for w in words:
            if _QUESTION_END.search(w) and rng.random() < 0.8:
                w += "?" if rng.random() < 0.6 else "."
            elif _STATEMENT_END.search(w) and rng.random() < 0.7:
                w += "."
            elif _CLAUSE_END.search(w) and rng.random() < 0.2:
                w += ","
            out.append(w)
        words = out
    elif words and rng.random() < 0.6:
        words[-1] += rng.choice((".", ".", "?", ","))
    return " ".join(words)


def word_noise(text: str, p: NoiseParams, rng: random.Random) -> str:
    out: list[str] = []
    if rng.random() < p.filler_start:
        out.append(rng.choice(FILLERS))
    for i, w in enumerate(text.split()):
        if i and rng.random() < p.filler_mid:
            out.append(rng.choice(FILLERS))
        syl = _HANGUL.findall(w)
        if len(syl) >= 3 and rng.random() < p.drop:
            k = rng.randrange(len(w))
            if _HANGUL.match(w[k]):
                w = w[:k] + w[k + 1:]
        out.append(w)
        if rng.random() < p.repeat:
            out.append(w)
    return " ".join(out)


def spacing(text: str, p: NoiseParams, rng: random.Random) -> str:
    words = text.split()
    res: list[str] = []
    for w in words:
        if len(w) >= 3 and _HANGUL.search(w) and rng.random() < p.split:
            k = rng.randrange(1, len(w))
            res.append(w[:k])
            w = w[k:]
        if res and rng.random() < p.merge:
            res[-1] += w
        else:
            res.append(w)
    return " ".join(res)


# Near sounds per jamo position (initial / medial / final index in the Unicode syllable block).
_L_NEAR = {0: (1, 15), 1: (0, 15), 15: (0, 1), 3: (4, 16), 4: (3, 16), 16: (3, 4), 7: (8, 17), 8: (7, 17),
           17: (7, 8), 9: (10,), 10: (9,), 12: (13, 14), 13: (12, 14), 14: (12, 13), 2: (5,), 5: (2,),
           11: (18,), 18: (11,)}
_V_NEAR = {1: (5,), 5: (1,), 4: (8,), 8: (4, 13), 18: (13,), 13: (18, 8), 6: (12,), 12: (6,), 19: (20,),
           20: (19,), 11: (10, 15), 10: (11, 15), 15: (10, 11), 2: (0,), 0: (2,), 3: (7,), 7: (3,)}
_T_NEAR = {0: (4, 8, 21), 4: (0, 21), 21: (4, 0), 8: (0, 4), 1: (0, 7, 19), 7: (1, 19), 19: (7, 1, 0),
           17: (1, 16), 16: (21, 17), 22: (19,)}


def _mangle_syllable(ch: str, rng: random.Random) -> str:
    o = ord(ch) - 0xAC00
    lead, vowel, tail = o // 588, (o % 588) // 28, o % 28
    pos = rng.random()
    if pos < 0.35 and tail in _T_NEAR:
        tail = rng.choice(_T_NEAR[tail])
    elif pos < 0.7 and vowel in _V_NEAR:
        vowel = rng.choice(_V_NEAR[vowel])
    elif lead in _L_NEAR:
        lead = rng.choice(_L_NEAR[lead])
    return chr(0xAC00 + lead * 588 + vowel * 28 + tail)


def mangle(text: str, p: NoiseParams, rng: random.Random) -> str:
    """Ordinary words misheard: one syllable's consonant or vowel becomes a near sound
    (tense/lax/aspirated initials, ㅐ/ㅔ, ㅓ/ㅗ, dropped or swapped finals)."""
    if p.mangle <= 0:
        return text
    return "".join(_mangle_syllable(c, rng) if "가" <= c <= "힣" and rng.random() < p.mangle else c
                   for c in text)


def lose_and_loop(text: str, p: NoiseParams, rng: random.Random) -> str:
    """Words the engine lost, and hallucinated loops (a span of 1-4 words said 2-6 times),
    which long-form Whisper output shows on silence and music."""
    words = [w for w in text.split() if rng.random() >= p.delete]
    if len(words) >= 2 and rng.random() < p.loop:
        n = rng.randint(1, min(4, len(words)))
        i = rng.randrange(len(words) - n + 1)
        span = words[i:i + n]
        words[i + n:i + n] = span * rng.randint(1, 5)
    return " ".join(words)


def noisy_turn(text: str, p: NoiseParams, rng: random.Random) -> str:
    text = switch_numbers(text, p, rng)
    text = mask_digits(text, p, rng)
    text = mishear(text, p, rng)
    text = punctuate(text, p, rng)
    text = mangle(text, p, rng)
    text = word_noise(text, p, rng)
    text = lose_and_loop(text, p, rng)
    text = spacing(text, p, rng)
    return text
