#!/usr/bin/env bash
# Rebuilds a model bundle from the repository:
# corpus/base → generated calls → WordPiece vocab → Go tokenizer ids →
# PyTorch training (v2: pooled state + family head) → ONNX export → card.json → parity check.
# Deterministic for SEED on one machine. Usage: make model  (or SEED=1 bash scripts/make-model.sh)
#
# Environment: SEED (training seed, 1), CORPUS_SEED (generator seed, 1), VOCAB_SIZE, MIN_CALLS,
# TRAIN_ARGS (the recipe), OUT (bundle dir, models/ko-vishing-lstm), WORK (build/model),
# CORPUS_DIR (corpus/build; CORPUS_READY=1 uses it without regenerating), PARITY=0 / REAL_EVAL=0 to skip those steps (scripts/sweep.py does),
# VERSION (card version, 0.5.0), SKIP_BUILD=1 to use an existing bin/callwatch (sweep.py builds it once), CHECKPOINT=1 to copy model.pt and train_report.json into the bundle (candidates).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
SEED="${SEED:-1}"
CORPUS_SEED="${CORPUS_SEED:-1}"
VOCAB_SIZE="${VOCAB_SIZE:-8000}"
# ~20 variants per base dialogue on disk; training draws a few of them per epoch.
MIN_CALLS="${MIN_CALLS:-8000}"
# Training recipe v2 (scripts/README.md, "Recipe v2"): pooled running state and a family head
# (loss weight 0.2); the binary head reads the means of the hidden states and of the embeddings
# (averaging, like the linear baselines; max and last stay in the state). Every epoch: one fresh
# variant per base dialogue, whole (a random 512-token window when longer) and as one crop that
# starts and ends anywhere, plus 200 long multi-call sequences; word dropout 0.1, dropout 0.3,
# weight decay 0.01; selection on a synthetic pool; thresholds at 2.5% / 0.5% of a synthetic
# normal pool. (Distillation, recombined crops and stronger corruption are options of train.py
# that did not help: see the rounds table.)
TRAIN_ARGS="${TRAIN_ARGS:---arch pooled --embed 64 --hidden 128 --features mean_h,mean_e \
 --dropout 0.3 --weight-decay 0.01 --word-dropout 0.1 --max-len 512 --variants-per-epoch 1 \
 --val-variants 1 --crops 1 --prefixes 0 --concat 200 --val-concat 200 --family-weight 0.2 \
 --epochs 8 --patience 3 --suspicious-fpr 0.025 --dangerous-fpr 0.005 --threshold-long 300 \
 --threads 1}"
OUT="${OUT:-models/ko-vishing-lstm}"
WORK="${WORK:-build/model}"
CORPUS_DIR="${CORPUS_DIR:-corpus/build}"
BIN=bin/callwatch
mkdir -p "$WORK" bin
if [ "${SKIP_BUILD:-0}" = 1 ] && [ -x "$BIN" ]; then
  echo "== using the existing $BIN (SKIP_BUILD=1)"
else
  go build -o "$BIN" ./cmd/callwatch
fi

if [ "${CORPUS_READY:-0}" = 1 ] && [ -s "$CORPUS_DIR/calls.jsonl" ]; then
  echo "== corpus: using $CORPUS_DIR as it is (CORPUS_READY=1)"
else
  echo "== corpus"
  $PY scripts/corpus/gen.py --out "$CORPUS_DIR" --seed "$CORPUS_SEED" --min-calls "$MIN_CALLS"
fi
echo "== vocabulary ($VOCAB_SIZE)"
"$BIN" vocab --input "$CORPUS_DIR/calls.jsonl" --format jsonl --size "$VOCAB_SIZE" --out "$WORK/tokenizer.json"
echo "== tokenize with the Go tokenizer"
"$BIN" tokenize --tokenizer "$WORK/tokenizer.json" --input "$CORPUS_DIR/calls.jsonl" --format jsonl > "$WORK/train.jsonl"
vocab=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["model"]["vocab"]))' "$WORK/tokenizer.json")
echo "== train (vocab $vocab, seed $SEED)"
# shellcheck disable=SC2086
$PY scripts/train.py --data "$WORK/train.jsonl" --vocab-size "$vocab" --out "$WORK" --seed "$SEED" $TRAIN_ARGS
echo "== bundle → $OUT"
$PY scripts/make_bundle.py --work "$WORK" --out "$OUT" --corpus "$CORPUS_DIR/stats.json" --seed "$SEED" \
  --version "${VERSION:-0.5.0}" \
  --command "SEED=$SEED bash scripts/make-model.sh" ${CHECKPOINT:+--with-checkpoint}
if [ "${PARITY:-1}" = 1 ]; then
  echo "== parity (onnxruntime vs pure Go)"
  "$BIN" parity --model "$OUT" --input testdata/parity_calls.jsonl --tolerance 1e-5
fi
if [ "${REAL_EVAL:-1}" = 1 ]; then
  echo "== real-call evaluation into card.json (evaluation only; skipped when the files are absent)"
  bash scripts/eval-real.sh "$OUT"
fi
