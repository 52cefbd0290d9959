"""onnx2torch rebuilds the exact PyTorch weights from an export (both architectures)."""
from __future__ import annotations

import io
import os
import tempfile
import unittest

import torch

from cwmodel import ModelConfig, build_model
from export import export_onnx
from onnx2torch import ConvertError, load_onnx


class OnnxToTorchTest(unittest.TestCase):
    def roundtrip(self, cfg: ModelConfig) -> None:
        torch.manual_seed(5)
        model = build_model(cfg).eval()
        if hasattr(model, "att_u"):  # zero at init: give the gate something to carry
            with torch.no_grad():
                model.att_u.normal_(0, 0.5)
                model.att_b.fill_(-0.3)
        with tempfile.TemporaryDirectory() as td:
            path = os.path.join(td, "m.onnx")
            export_onnx(model, path, metadata={"callwatch.families": ",".join(cfg.families)}, log=io.StringIO())
            back = load_onnx(path)
        self.assertEqual(back.cfg.pool_norm, cfg.pool_norm)
        self.assertEqual(back.cfg.pool_cap, cfg.pool_cap)
        self.assertEqual(back.cfg.pool_max_h, cfg.pool_max_h)
        want, got = model.state_dict(), back.state_dict()
        self.assertEqual(sorted(want), sorted(got))
        for k in want:
            self.assertTrue(torch.equal(want[k], got[k]), k)

    def test_pooled(self) -> None:
        self.roundtrip(ModelConfig(vocab=40, embed=6, hidden=10, layers=2, arch="pooled",
                                   families=("a_fam", "b_fam", "c_fam")))

    def test_pooled_sqrt_norm(self) -> None:
        self.roundtrip(ModelConfig(vocab=40, embed=6, hidden=10, layers=1, arch="pooled",
                                   families=("a_fam", "b_fam"), pool_norm="sqrt"))

    def test_pooled_sqrt_cap(self) -> None:
        self.roundtrip(ModelConfig(vocab=40, embed=6, hidden=10, layers=1, arch="pooled",
                                   families=("a_fam", "b_fam"), pool_norm="sqrt", pool_cap=512))

    def test_pooled_max_e(self) -> None:
        self.roundtrip(ModelConfig(vocab=40, embed=6, hidden=10, layers=1, arch="pooled",
                                   families=("a_fam", "b_fam"), pool_norm="sqrt",
                                   features=("mean_h", "last_h", "mean_e", "max_e")))

    def test_pooled_compact_layout(self) -> None:
        self.roundtrip(ModelConfig(vocab=40, embed=6, hidden=10, layers=1, arch="pooled",
                                   families=("a_fam", "b_fam"), pool_norm="sqrt",
                                   features=("mean_h", "last_h", "mean_e"), pool_max_h=False))

    def test_pooled_att_h(self) -> None:
        self.roundtrip(ModelConfig(vocab=40, embed=6, hidden=10, layers=1, arch="pooled",
                                   families=("a_fam", "b_fam"), pool_norm="sqrt",
                                   features=("mean_h", "last_h", "mean_e", "att_h"), pool_max_h=False))

    def test_pooled_head_hidden(self) -> None:
        self.roundtrip(ModelConfig(vocab=30, embed=4, hidden=8, layers=1, arch="pooled",
                                   families=("x", "y"), head_hidden=5))

    def test_last(self) -> None:
        self.roundtrip(ModelConfig(vocab=30, embed=5, hidden=7, layers=1))

    def test_not_onnx(self) -> None:
        with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
            f.write(b"not a model")
            f.flush()
            with self.assertRaises(Exception):
                load_onnx(f.name)


if __name__ == "__main__":
    unittest.main()
