#!/usr/bin/env bash
# Rebuilds the shipped bundle models/ko-vishing-lstm from the repository:
# corpus/base → generated calls → WordPiece vocab → Go tokenizer ids →
# PyTorch training → ONNX export → card.json → parity check.
# Deterministic for SEED on one machine. Usage: make model  (or SEED=1 bash scripts/make-model.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
SEED="${SEED:-1}"
VOCAB_SIZE="${VOCAB_SIZE:-8000}"
# ~20 variants per base dialogue on disk; training draws a few of them per epoch.
MIN_CALLS="${MIN_CALLS:-8000}"
# Training recipe (scripts/README.md, "Generalizing to real calls"): long multi-call sequences,
# word dropout, weight decay, fresh variants per epoch, selection on validation ROC-AUC, and
# thresholds calibrated on long validation concatenations.
TRAIN_ARGS="${TRAIN_ARGS:---embed 48 --hidden 128 --dropout 0.3 --word-dropout 0.1 --weight-decay 0.01 \
 --max-len 768 --variants-per-epoch 6 --val-variants 4 --concat 400 --val-concat 200 --concat-max 3072 \
 --epochs 12 --patience 3 --select auc --threads 1}"
OUT="${OUT:-models/ko-vishing-lstm}"
WORK="build/model"
BIN=bin/callwatch
mkdir -p "$WORK" bin
go build -o "$BIN" ./cmd/callwatch

echo "== corpus"
$PY scripts/corpus/gen.py --out corpus/build --seed "$SEED" --min-calls "$MIN_CALLS"
echo "== vocabulary ($VOCAB_SIZE)"
"$BIN" vocab --input corpus/build/calls.jsonl --format jsonl --size "$VOCAB_SIZE" --out "$WORK/tokenizer.json"
echo "== tokenize with the Go tokenizer"
"$BIN" tokenize --tokenizer "$WORK/tokenizer.json" --input corpus/build/calls.jsonl --format jsonl > "$WORK/train.jsonl"
vocab=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["model"]["vocab"]))' "$WORK/tokenizer.json")
echo "== train (vocab $vocab)"
$PY scripts/train.py --data "$WORK/train.jsonl" --vocab-size "$vocab" --out "$WORK" --seed "$SEED" $TRAIN_ARGS
echo "== bundle → $OUT"
$PY scripts/make_bundle.py --work "$WORK" --out "$OUT" --corpus corpus/build/stats.json --seed "$SEED"
echo "== parity (onnxruntime vs pure Go)"
"$BIN" parity --model "$OUT" --input testdata/parity_calls.jsonl --tolerance 1e-5
echo "== real-call evaluation into card.json (evaluation only; skipped when the files are absent)"
bash scripts/eval-real.sh "$OUT"
