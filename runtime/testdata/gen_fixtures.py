#!/usr/bin/python3
"""Regenerates tiny.onnx and fixtures.json for the runtime backends' tests.

A tiny 2-layer model (vocab 64, embed 8, hidden 16) with fixed-seed random
weights, scaled up so that probabilities spread well away from 0.5, exported
with scripts/export.py; fixtures.json holds PyTorch's packed-forward outputs
on padded, stateful and carried-state cases (format: scripts/fixtures.py).

Run from anywhere:  /usr/bin/python3 runtime/testdata/gen_fixtures.py
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))

import torch  # noqa: E402

from cwmodel import CallWatchLSTM, ModelConfig  # noqa: E402
from export import export_onnx, op_list  # noqa: E402
from fixtures import CaseBuilder  # noqa: E402

SEED = 20240611
CFG = ModelConfig(vocab=64, embed=8, hidden=16, layers=2)


def tiny_model() -> CallWatchLSTM:
    torch.manual_seed(SEED)
    m = CallWatchLSTM(CFG)
    with torch.no_grad():
        # Default init (±1/sqrt(H)) keeps the state small and probs near 0.5;
        # larger weights exercise saturation and make a wrong gate order obvious.
        for name, p in m.lstm.named_parameters():
            p.uniform_(-0.6, 0.6) if name.startswith("weight") else p.uniform_(-0.3, 0.3)
        m.head.weight.normal_(0.0, 1.5)
        m.head.bias.uniform_(-0.5, 0.5)
    return m.eval()


def main() -> int:
    torch.set_num_threads(1)
    model = tiny_model()
    onnx_path = os.path.join(HERE, "tiny.onnx")
    om = export_onnx(model, onnx_path, metadata={"callwatch.name": "tiny-fixture",
                                                 "callwatch.seed": str(SEED)})
    cb = CaseBuilder(model, seed=SEED)
    cb.add_standard(long_len=300)
    diff = cb.check_onnx(om)
    cb.write(os.path.join(HERE, "fixtures.json"), "tiny.onnx")
    ps = [p for c in cb.cases for p in c["probs"][1::2]]
    print(f"tiny.onnx ops: {' '.join(op_list(om))}")
    print(f"{len(cb.cases)} cases; P(phishing) range {min(ps):.3f}..{max(ps):.3f}; "
          f"max scaled |onnx reference - torch| = {diff:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
