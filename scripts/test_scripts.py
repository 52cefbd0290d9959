#!/usr/bin/python3
"""Self-tests for the training and export scripts (a few seconds, CPU).

  /usr/bin/python3 -m unittest discover -s scripts -p 'test_*.py'
"""

from __future__ import annotations

import os
import tempfile
import unittest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

import export  # noqa: E402
import onnxref  # noqa: E402
from cwmodel import CallWatchLSTM, ModelConfig  # noqa: E402
from train import choose_thresholds, fpr_threshold, roc_auc  # noqa: E402


def tiny(layers: int = 2) -> CallWatchLSTM:
    torch.manual_seed(3)
    return CallWatchLSTM(ModelConfig(vocab=40, embed=6, hidden=10, layers=layers)).eval()


class ModelTest(unittest.TestCase):
    def test_logits_at_last_equals_packed(self) -> None:
        m = tiny()
        x = torch.randint(0, 40, (5, 17))
        lens = torch.tensor([5, 1, 17, 17, 3])
        with torch.no_grad():
            diff = (m.logits_at_last(x, lens) - m.encode(x, lens)[0]).abs().max().item()
        self.assertLess(diff, 1e-6)

    def test_padding_does_not_leak(self) -> None:
        m = tiny()
        row = torch.randint(1, 40, (1, 6))
        batch = torch.randint(0, 40, (3, 20))
        batch[1, :6] = row[0]
        with torch.no_grad():
            alone = m(row, torch.tensor([6]))
            inside = m(batch, torch.tensor([20, 6, 9]))
        for a, b in zip(alone, inside):
            got = b[:, 1] if b.dim() == 3 else b[1]
            want = a[:, 0] if a.dim() == 3 else a[0]
            self.assertLess((got - want).abs().max().item(), 1e-6)


class ExportTest(unittest.TestCase):
    def test_export_layers(self) -> None:
        for layers in (1, 2):
            with self.subTest(layers=layers), tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "m.onnx")
                with open(os.devnull, "w") as null:
                    export.export_onnx(tiny(layers), path, log=null)
                m = onnx.load(path)
                self.assertEqual([i.name for i in m.graph.input], list(export.INPUTS))
                self.assertEqual([o.name for o in m.graph.output], list(export.OUTPUTS))
                self.assertEqual(sum(n.op_type == "LSTM" for n in m.graph.node), layers)
                meta = {p.key: p.value for p in m.metadata_props}
                self.assertEqual(meta["callwatch.layers"], str(layers))
                self.assertEqual(meta["callwatch.hidden"], "10")
                self.assertEqual(m.opset_import[0].version, export.OPSET)

    def test_verify_catches_unwired_lengths(self) -> None:
        model = tiny()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.onnx")
            with open(os.devnull, "w") as null:
                m = export.export_onnx(model, path, log=null)
        for n in m.graph.node:
            if n.op_type == "LSTM":
                n.input[4] = ""
        with self.assertRaises(export.ExportError):
            export.check_structure(m, 2)
        with self.assertRaises(export.ExportError):
            export.verify(model, m)

    def test_reference_rejects_unknown_ops(self) -> None:
        g = onnx.helper.make_graph(
            [onnx.helper.make_node("Foo", ["x"], ["y"])], "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
        with self.assertRaises(NotImplementedError):
            onnxref.run(onnx.helper.make_model(g), {"x": np.zeros(1, np.float32)})


class MetricsTest(unittest.TestCase):
    def test_roc_auc_matches_pairwise_count(self) -> None:
        r = np.random.RandomState(0)
        for _ in range(20):
            y = r.randint(0, 2, 40)
            s = np.round(r.rand(40), 1)
            pos, neg = s[y == 1], s[y == 0]
            want = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
            self.assertAlmostEqual(roc_auc(y, s), want, places=12)

    def test_fpr_threshold_is_lowest_meeting_target(self) -> None:
        r = np.random.RandomState(1)
        for _ in range(20):
            neg = np.round(r.rand(37), 1).astype(np.float32).astype(np.float64)
            for target in (0.0, 0.01, 0.05, 0.2):
                t = fpr_threshold(neg, target)
                self.assertLessEqual(np.mean(neg >= t), target)
                below = neg[neg < t]
                if len(below):
                    self.assertGreater(np.mean(neg >= below.max()), target)

    def test_thresholds_ordered_and_floored(self) -> None:
        th = choose_thresholds(np.array([0, 0, 0, 1]), np.array([0.1, 0.2, 0.3, 0.9]), 0.05, 0.01)
        self.assertEqual(th["suspicious"], 0.5)
        self.assertGreaterEqual(th["dangerous"], th["suspicious"])


if __name__ == "__main__":
    unittest.main()
