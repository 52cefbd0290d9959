#!/usr/bin/env python3
"""Writes tokenize/testdata/golden_lines.jsonl: hand-written STT-like lines plus
deterministic variants (spacing, fillers, NFD, odd spaces, emoji, invalid bytes).

Run from the repo root: /usr/bin/python3 scripts/tokgolden/make_lines.py
Every line is written by the project; none comes from the evaluation data.
"""
from __future__ import annotations

import base64
import json
import random
import sys
import unicodedata
from pathlib import Path

BASE: list[str] = [
    # prosecutor / police / FSS impersonation, STT style: no punctuation, odd spacing
    "여보세요 서울중앙지검 수사관 박진우 라고 합니다 본인 맞으세요",
    "네네 맞는데요 무슨 일이시죠",
    "고객님 명의로 개설된 대포 통장이 범죄에 이용돼서요",
    "어 저는 그런거 만든적 없는데",
    "지금부터 하는 통화는 전부 녹취 되고있습니다",
    "주변에 가족분 계시면 조용한데로 이동해 주시구요",
    "이사건은 보안사항이라 은행직원 한테도 말씀하시면 안됩니다",
    "금융감독원 이 과장이 곧 연락 드릴거에요",
    "안전 계좌로 잔액을 이체하시면 조사 끝나고 돌려 드려요",
    "음 근데 그거 보이스피싱 아니에요",
    "아니 저희는 국가기관 이에요 의심하시면 공무집행 방해 됩니다",
    "사건번호 2024 고단 3817 호 불러 드릴게요 받아 적으세요",
    "검찰청 홈페이지 들어가셔서 나의사건 조회 눌러보세요",
    "사이버 수사대 김경위 입니다 고객님 계좌가 도용 됐어요",
    # loan fraud
    "안녕하세요 저금리 대환 대출 안내 드리려고요",
    "기존에 쓰시던 카드론 있으시죠 그거 먼저 상환 하셔야 돼요",
    "법무사 계좌로 일천 오백만원 입금 하시면 바로 승인 나요",
    "신용 등급 올리려면 보증 보험료 선납이 필요합니다",
    "정부 지원 햇살론 대상자 이시거든요 오늘 까지만 신청 가능해요",
    "오대금리 적용해서 연 삼점 구 프로 로 해 드릴게요",
    "대출 실행 전에 공탁금 이백만원 먼저 걸어 주셔야돼요",
    "어 그 앱은 플레이 스토어에 없고 링크로 보내 드린걸로 까세요",
    # family impersonation
    "엄마 나 폰 액정 깨져서 수리 맡겼어 이번호로 연락줘",
    "급하게 문화 상품권 좀 사줄수 있어 나중에 줄께",
    "아빠 나 지금 사고 났는데 합의금이 필요해",
    "니 딸 데리고 있으니까 경찰에 알리면 어떻게 되는지 알지",
    # delivery / card pretext
    "고객님 신한카드 발급 신청 되셔서 내일 배송 예정 입니다",
    "카드 발그를 신청한적이 없는데요",
    "그럼 명의 도용 가능성이 있으니까 카드사 고객센터로 연결 해드릴게요",
    "택배 주소지 불명으로 보관중 입니다 아래 링크 확인 바랍니다",
    "관세 미납으로 통관 보류 중입니다 납부 하셔야 돼요",
    # remote app, investment, jobs
    "팀뷰어 라는 앱 설치 하시면 저희가 원격으로 보안 점검 해드려요",
    "보안 카드 번호 앞에 두자리 뒤에 두자리 불러주세요",
    "리딩방 들어오시면 하루 수익 삼십 프로 보장 해드립니다",
    "코인 출금 하려면 수수료 먼저 내셔야 돼요",
    "체크카드 빌려주시면 한장당 월 백만원 드려요",
    "고액 알바 인데 현금 전달만 하시면 돼요",
    # hard negatives: legitimate bank / card / insurance / delivery / police
    "네 고객님 하나은행 고객센터 상담원 이지은 입니다",
    "본인 확인 위해서 생년 월일 여섯자리 말씀 부탁 드립니다",
    "카드 뒷번호 네자리 확인 되셨구요 분실 신고 접수 해 드렸습니다",
    "가까운 영업점 방문 하시면 신분증 지참 해 주세요",
    "이번달 결제 대금이 미납 되셔서 안내 차 연락 드렸습니다",
    "자동이체 계좌 변경은 앱에서 직접 하시면 됩니다",
    "저희는 절대 전화로 비밀번호 여쭤보지 않습니다",
    "보험 만기 환급금 은 등록된 본인 계좌로 들어가요",
    "택배 기사 입니다 집에 안계셔서 경비실에 맡겨 둘게요",
    "경찰서 민원실 인데요 분실물 찾아가시라고 연락 드렸어요",
    "법원 등기 우편 두번 반송 돼서 우체국 방문 하셔야 돼요",
    "대출 상담 원하시면 영업점 창구 에서도 가능 하십니다",
    "연체 되시면 신용 점수에 영향이 있을 수 있어서 안내 드립니다",
    # fillers and mangled words
    "어 어 음 네네 네 그니까 그게 음",
    "아 예 예 잠시만요 어 뭐라고요",
    "으음 네 네네네 아 그래요",
    "근까 그니깐 제가요 어 그 통장이요",
    "발그 바 발급 이요 네 발급",
    "계좌 번호가 어 일일공 에 삼사오",
    "대한 대출 말고 대환 대출 이요",
    "금감원 금융 감동원 아니 감독원",
    # numbers: digits and Korean numerals
    "010 1234 5678",
    "01012345678",
    "공일공 일이삼사 오육칠팔",
    "삼천 만원 이요 3000만원",
    "이천이십사년 삼월 십오일",
    "2024년 3월 15일 오후 2시 30분",
    "일억 이천 삼백 사십 오만 원",
    "123,456,789원",
    "3.5% 금리",
    "9시부터 6시까지",
    "1588-9999",
    "주민번호 앞자리 900101",
    "백십일 번 버스",
    "하나 둘 셋 넷",
    "제 1 금융권 제2금융권",
    "½ ¾ ① ② Ⅳ ⅻ ٣ ३",
    # Latin and mixed
    "hello world",
    "OTP 번호 여섯 자리 알려 주세요",
    "ARS 인증 하시고 PIN 번호 누르세요",
    "KB국민은행 NH농협 IBK기업은행",
    "www.fss.or.kr 에서 확인 하세요",
    "http://bit.ly/abc123 링크 클릭",
    "카톡 ID는 kim_1234 입니다",
    "email test@example.com",
    "Mr. Kim 입니다",
    "iPhone 15 Pro 수리비",
    "USIM 카드 교체",
    "Café naïve résumé",
    "Straße Ærø Øresund",
    "Привет мир",
    "中國 日本語 ひらがな カタカナ",
    "ｶﾀｶﾅ 半角",
    # emoji
    "😀",
    "👍👍👍",
    "네 👍🏽 알겠습니다",
    "👨‍👩‍👧‍👦 가족",
    "🏳️‍🌈 깃발",
    "❤️ 사랑해",
    "🇰🇷 대한민국",
    "🙏🏻🙏🏼🙏🏽🙏🏾🙏🏿",
    "🧑‍💻 개발자",
    "ㅋㅋㅋ ㅎㅎ ㅠㅠ ㅜㅜ",
    # full-width forms
    "ＡＢＣ１２３",
    "ｆｕｌｌ　ｗｉｄｔｈ　ｔｅｘｔ",
    "전각 （괄호） ［대괄호］ ！？",
    "１５８８－１２３４",
    # punctuation oddities
    "네... 그래서요?",
    "뭐라고요!!! 진짜요???",
    "\"따옴표\" '작은따옴표' 「꺾쇠」 『겹꺾쇠』",
    "가격: 5,000원 / 수량: 3개",
    "A+B=C <태그> {중괄호} [대괄호] |파이프| ~물결~",
    "#해시태그 @멘션 $100 ^_^ `백틱`",
    "…… ― — – · • ※ ○ ● ◎ ◇ ◆ □ ■ △ ▲",
    "「」『』【】〔〕〈〉《》",
    "¿Qué? ¡Hola!",
    "§ ¶ † ‡ ‰ ′ ″",
    "＆＊＠＃",
    "㈜한국 ㈔협회 ㎏ ㎞ ℃",
    "[UNK] [PAD] [CLS]",
    "##가 ##",
    # long-ish
    "네 그래서 지금 제가 말씀드린 것처럼 고객님 계좌가 범죄에 연루된 상황이라서 저희가 자금을 잠시 보호 조치 해야 하는데요 금감원 직원 분이 안내 하는 계좌로 옮기시면 되고요 이건 절대 다른 사람 한테 말씀 하시면 안 되는 겁니다 아시겠죠",
    "가" * 99,
    "가" * 100,
    "가" * 101,
    "나다" * 60,
    "a" * 150,
]


def variants(line: str, rng: random.Random) -> list[str]:
    out: list[str] = []
    out.append(line.replace(" ", ""))  # spacing lost
    words = line.split(" ")
    if len(words) > 1:
        fillers = ["어", "음", "네네", "아", "그", "예"]
        w = list(words)
        w.insert(rng.randrange(len(w) + 1), rng.choice(fillers))
        out.append(" ".join(w))
        # wrong spacing: split a word at a random syllable
        i = rng.randrange(len(words))
        if len(words[i]) > 1:
            k = rng.randrange(1, len(words[i]))
            w2 = list(words)
            w2[i] = words[i][:k] + " " + words[i][k:]
            out.append(" ".join(w2))
    return out


ODD_SPACES = ["\t", "\r\n", "\n", "\u00a0", "\u3000", "\u2003", "\u2009", "\u202f", "\u205f", "\u2028", "\u0085", "\x0b", "\x0c"]
DROPPED = ["\x00", "\u200b", "\u200c", "\u200d", "\ufeff", "\u200e", "\u202e", "\u00ad", "\u2060", "\x07", "\x1b", "\x7f"]


def main() -> None:
    rng = random.Random(20240315)
    lines: list[bytes] = []
    for b in BASE:
        lines.append(b.encode())
    for b in BASE[:60]:
        for v in variants(b, rng):
            lines.append(v.encode())
    # odd spaces and control/format characters inside Korean text
    for i, b in enumerate(BASE[:40]):
        sp = ODD_SPACES[i % len(ODD_SPACES)]
        lines.append(b.replace(" ", sp).encode())
        dr = DROPPED[i % len(DROPPED)]
        words = b.split(" ")
        lines.append((words[0][:1] + dr + words[0][1:] + " " + " ".join(words[1:])).encode())
        lines.append(("  " + b + "   \t ").encode())
    # decomposed Hangul (NFD) and mixed NFD/NFC
    for b in BASE[:30]:
        lines.append(unicodedata.normalize("NFD", b).encode())
    lines.append(("여보세요 " + unicodedata.normalize("NFD", "대포통장") + " 발급").encode())
    lines.append("\u1100\u1161\u11a8".encode())  # conjoining jamo → 각
    lines.append("\u1100 \u1161".encode())  # jamo separated by space: no composition
    lines.append("\u1100\u200d\u1161".encode())  # jamo separated by ZWJ
    lines.append("e\u0301 a\u0308 o\u0303".encode())
    # runs of spaces, empty and whitespace-only
    lines += [b"", b" ", b"     ", b"\t\t\r\n", "\u3000\u00a0 ".encode(), ("네" + " " * 50 + "네").encode()]
    lines += [b"\x00", b"\x00\x00abc\x00", "\u200b\u200d\ufeff".encode()]
    # invalid UTF-8
    lines += [
        b"\xff\xfe",
        b"\xed\xa0\x80",  # surrogate half
        "여보".encode() + b"\xea\xb0" + "세요".encode(),  # truncated 3-byte sequence
        b"abc\x80def",
        "네네".encode() + b"\xc0\xaf" + "통장".encode(),  # overlong
        b"\xf8\x88\x80\x80\x80",
        "계좌".encode()[:-1],
        b"\xe2\x82",
        b"\xf0\x9f\x98",  # truncated emoji
        "카드 ".encode() + b"\xff" * 5 + " 발급".encode(),
    ]
    # synthetic mixes to pad out coverage deterministically
    pieces = ["통장", "계좌", "대출", "010", "3000", "만원", "OTP", "👍", "！", "ＡＢ", "...", "?", "어", "네네", "e\u0301", "가\u200d나", "\u00a0", "\t"]
    while len(lines) < 560:
        k = rng.randrange(2, 7)
        lines.append(" ".join(rng.choice(pieces) for _ in range(k)).encode())

    out = Path("tokenize/testdata/golden_lines.jsonl")
    with out.open("w", encoding="utf-8") as f:
        for raw in lines:
            try:
                s = raw.decode("utf-8")
                rec = {"raw": s}
            except UnicodeDecodeError:
                rec = {"raw_b64": base64.b64encode(raw).decode()}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(lines)} lines to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
