#!/usr/bin/env bash
# Evaluates a bundle on each real-call file (evaluation only, never training data: see
# /work/shared/data/real-eval/README.md) and merges per-file figures into the bundle's card.json
# under "real_eval". Files are reported separately, never pooled.
#
#   bash scripts/eval-real.sh [MODEL_DIR]          # default models/ko-vishing-lstm
#   STREAM=0 bash scripts/eval-real.sh             # skip the streaming replay (faster)
#   REAL_EVAL_DIR=/path bash scripts/eval-real.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-models/ko-vishing-lstm}"
DATA_DIR="${REAL_EVAL_DIR:-/work/shared/data/real-eval}"
STREAM="${STREAM:-1}"
BIN=bin/callwatch
WORK="build/real-eval/$(basename "$MODEL")"
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/callwatch
if ! ls "$DATA_DIR"/*.jsonl >/dev/null 2>&1; then
  echo "eval-real.sh: no real-eval files in $DATA_DIR; card left unchanged" >&2
  exit 0
fi
rm -rf "$WORK" && mkdir -p "$WORK"
for f in "$DATA_DIR"/*.jsonl; do
  name=$(basename "$f" .jsonl)
  echo "== $name" >&2
  # exit 1 means some records failed; they are counted in the report ("failed", "errors").
  "$BIN" eval --model "$MODEL" --data "$f" > "$WORK/$name.json" || [ $? -eq 1 ]
  if [ "$STREAM" = 1 ]; then
    "$BIN" eval --stream --model "$MODEL" --data "$f" > "$WORK/$name.stream.json" || [ $? -eq 1 ]
  fi
done
/usr/bin/python3 scripts/real_eval_card.py --card "$MODEL/card.json" --results "$WORK" \
  --command "bash scripts/eval-real.sh $MODEL  (bin/callwatch eval [--stream] --model $MODEL --data $DATA_DIR/<file>.jsonl)"
