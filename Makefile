# callwatch — see README.md. `make run` and `make test` set up what they need.
SHELL := /bin/bash
GO ?= go
PY := /usr/bin/python3
BIN := bin/callwatch
MODEL := models/ko-vishing-lstm
SAMPLES := corpus/samples/calls.jsonl
export CGO_ENABLED := 1

.PHONY: all run test test-noort test-py test-short ort torch chromium build model baselines sweep learning-curve corpus parity fuzz bench bench-peers clean release

all: build

## ort: install libonnxruntime 1.24.3 into .ort/ (from the npm package onnxruntime-node)
ort:
	@bash scripts/setup-ort.sh

## torch: install Debian's python3-torch, python3-onnx, python3-sklearn and OpenBLAS (without it torch falls back to the reference BLAS, ~30x slower)
torch:
	@if ! $(PY) -c 'import torch, onnx, sklearn' 2>/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then \
	  echo "installing python3-torch python3-onnx python3-sklearn (Debian packages, ~700 MB)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends python3-torch python3-onnx python3-sklearn libopenblas0-pthread >/dev/null; \
	fi
	@$(PY) -c 'import torch, onnx, sklearn; print("torch", torch.__version__, "onnx", onnx.__version__, "sklearn", sklearn.__version__)'

## chromium: install Debian's chromium (the monitor page's browser test drives it headless)
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing chromium (Debian package)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null; \
	fi

build:
	@mkdir -p bin
	$(GO) build -o $(BIN) ./cmd/callwatch

## run: classify the bundled sample calls with the shipped model on onnxruntime
run: ort build
	./$(BIN) classify --backend ort --model $(MODEL) --input $(SAMPLES)

## test: everything — unit, golden, parity, CLI, export round trip, short fuzz, race
test: ort torch chromium
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 45m ./...
	$(MAKE) --no-print-directory test-noort
	$(MAKE) --no-print-directory test-py
	$(MAKE) --no-print-directory fuzz FUZZTIME=500x
	$(MAKE) --no-print-directory parity

## test-noort: the cgo-free, native-only variant (-tags noort) builds, vets and passes its tests
test-noort:
	CGO_ENABLED=0 $(GO) vet -tags noort ./...
	CGO_ENABLED=0 $(GO) build -tags noort -o bin/callwatch-native ./cmd/callwatch
	CGO_ENABLED=0 $(GO) test -tags noort -count=1 ./api ./client ./runtime ./runtime/native ./models ./tokenize ./internal/...
	CGO_ENABLED=0 $(GO) test -tags noort -count=1 -run 'TestNoORT' ./cmd/callwatch

## test-py: the Python scripts' unit tests (corpus generator and checks, baselines, training/export helpers)
test-py: torch
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m unittest discover -s scripts/corpus -p 'test_*.py'
	cd scripts && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) -m unittest discover -s . -p 'test_*.py'

## parity: onnxruntime vs pure-Go backend on the shipped model over the parity calls
parity: ort build
	./$(BIN) parity --model $(MODEL) --input testdata/parity_calls.jsonl --tolerance 1e-5

# A count (500x) rather than a duration in make test: Go 1.26's fuzz coordinator can report
# "context deadline exceeded" at the end of a timed run without any failing input.
FUZZTIME ?= 30s
## fuzz: run every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m for a long run)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    log=$$(mktemp); \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg >$$log 2>&1 || { echo "fuzz $$f failed"; tail -40 $$log; rm -f $$log; exit 1; }; \
	    rm -f $$log; \
	  done; \
	done

## corpus: generate the training corpus from corpus/base into corpus/build
corpus:
	$(PY) scripts/corpus/gen.py --out corpus/build --seed 1

## model: rebuild models/ko-vishing-lstm from the repository (corpus → vocab → tokenize → train → export → bundle)
model: ort torch build
	bash scripts/make-model.sh

## baselines: TF-IDF+LR (token ids, characters) and a keyword rule vs the LSTM on each real-eval file (BASELINES_ARGS: --corpus DIR, --tokenizer FILE, --lstm-model DIR, --lstm-results FILE)
baselines: ort torch build
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) scripts/baselines.py $(BASELINES_ARGS)

## sweep: train the make-model recipe for several seeds (SEEDS="1 3 5": each trains members k, k+1) and print per-file real-eval ROC-AUC median and min–max
sweep: torch build
	$(PY) scripts/sweep.py --seeds $(or $(SEEDS),1 3 5)

## learning-curve: real-eval ROC-AUC of the token-n-gram LR and the LSTM on 25/50/100% of the base dialogues, 3 seeds each (LC_ARGS=--no-lstm for the baseline only)
learning-curve: ort torch build
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) scripts/learning_curve.py $(LC_ARGS)

## release: static native-only (-tags noort) and onnxruntime binaries for linux/amd64 and linux/arm64, the onnxruntime ones also as
## .tar.gz with libonnxruntime beside the binary, and SHA256SUMS, into $(DIST) (VERSION=... overrides git describe; ORT_BUNDLE=0: no archives)
DIST ?= dist
release:
	@if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing gcc-aarch64-linux-gnu (Debian package: the C cross compiler for the arm64 onnxruntime binary)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null || true; \
	fi
	VERSION="$(VERSION)" DIST="$(DIST)" GO="$(GO)" bash scripts/release.sh

bench: ort
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-peers: callwatch vs onnxruntime-node, HF tokenizers and PyTorch eager (table of medians and ratios)
bench-peers: ort torch
	cd scripts/bench && npm ci --ignore-scripts --no-audit --no-fund >/dev/null
	$(GO) run ./scripts/bench

clean:
	rm -rf bin corpus/build
