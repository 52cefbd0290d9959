#!/usr/bin/env bash
# Regenerates the golden ids that pin the Go tokenizer to the Rust HF library.
#
#   scripts/tokgolden/regen.sh            # test vocab + golden ids (tokenize/testdata)
#   scripts/tokgolden/regen.sh --lines    # also rewrite golden_lines.jsonl (make_lines.py)
#   scripts/tokgolden/regen.sh --allchars # also re-derive tokenize/hfchars.go by encoding
#                                         # "가X나" for every code point with HF (~3 min)
#
# Check any tokenizer.json (e.g. a shipped model's) against HF by hand:
#   go run ./scripts/tokgolden/gen clean -lines tokenize/testdata/golden_lines.jsonl > /tmp/clean.jsonl
#   node scripts/tokgolden/encode.js models/ko-vishing-lstm/tokenizer.json < /tmp/clean.jsonl > /tmp/hf.jsonl
#   go run ./scripts/tokgolden/gen join -lines tokenize/testdata/golden_lines.jsonl -ids /tmp/hf.jsonl > /tmp/golden.jsonl
#   CALLWATCH_GOLDEN_TOKENIZER=$PWD/models/ko-vishing-lstm/tokenizer.json CALLWATCH_GOLDEN_IDS=/tmp/golden.jsonl \
#     go test ./tokenize -run TestGoldenIDs
set -euo pipefail
cd "$(dirname "$0")/../.."
td=tokenize/testdata
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ "${1:-}" == "--lines" ]]; then
  /usr/bin/python3 scripts/tokgolden/make_lines.py
fi
(cd scripts/tokgolden && npm ci --no-audit --no-fund --silent)
go run ./scripts/tokgolden/gen vocab -corpus $td/vocab_corpus.txt -size 5600 -min-freq 1 -out $td/tokenizer.json
go run ./scripts/tokgolden/gen clean -lines $td/golden_lines.jsonl > "$tmp/clean.jsonl"
node scripts/tokgolden/encode.js $td/tokenizer.json < "$tmp/clean.jsonl" > "$tmp/ids.jsonl"
go run ./scripts/tokgolden/gen join -lines $td/golden_lines.jsonl -ids "$tmp/ids.jsonl" > $td/golden_ids.jsonl
if [[ "${1:-}" == "--allchars" ]]; then
  go run ./scripts/tokgolden/gen allchars > "$tmp/all.jsonl"
  go run ./scripts/tokgolden/gen clean -lines "$tmp/all.jsonl" > "$tmp/all_clean.jsonl"
  node scripts/tokgolden/encode.js $td/tokenizer.json < "$tmp/all_clean.jsonl" > "$tmp/all_ids.jsonl"
  go run ./scripts/tokgolden/gen join -lines "$tmp/all.jsonl" -ids "$tmp/all_ids.jsonl" > "$tmp/all_golden.jsonl"
  go run ./scripts/tokgolden/gen chartable -ids "$tmp/all_golden.jsonl" > "$tmp/hfchars.go"
  mv "$tmp/hfchars.go" tokenize/hfchars.go
  CALLWATCH_GOLDEN_TOKENIZER=$PWD/$td/tokenizer.json CALLWATCH_GOLDEN_IDS="$tmp/all_golden.jsonl" \
    go test ./tokenize -run 'TestGoldenIDs/fast' -count=1
fi
echo "wrote $td/tokenizer.json and $td/golden_ids.jsonl ($(wc -l < $td/golden_ids.jsonl) lines)"
