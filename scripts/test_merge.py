"""Self-test of train.py --merge (an ensemble of trained members as one graph), CPU, ~20 s:
two tiny members trained on a tiny synthetic corpus with one split, merged, thresholded and
exported; the merged ONNX (numpy reference evaluator) scores the members' mean logit."""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

import onnxref  # noqa: E402
import train  # noqa: E402
from cwmodel import load_checkpoint  # noqa: E402

VOCAB = 60


def tiny_corpus(path: str) -> None:
    rng = random.Random(3)
    fams = [("normal", "a_bank"), ("normal", "b_chat"), ("phishing", "c_loan"), ("phishing", "d_police")]
    with open(path, "w", encoding="utf-8") as f:
        for label, fam in fams:
            for g in range(12):
                for v in range(3):
                    base = 10 if label == "phishing" else 30
                    ids = [rng.randrange(2, VOCAB) if rng.random() < 0.6 else rng.randrange(base, base + 10)
                           for _ in range(rng.randint(8, 40))]
                    f.write(json.dumps({"id": f"{fam}-{g:03d}-v{v}", "group": f"{fam}-{g:03d}",
                                        "label": label, "family": fam, "ids": ids}) + "\n")


def report(d: str) -> dict:
    with open(os.path.join(d, "train_report.json"), encoding="utf-8") as f:
        return json.load(f)


class MergeTest(unittest.TestCase):
    def test_merge_rms(self) -> None:
        """Members reading rms_h / rms_e merge into one graph (a Reshape per normalized sum) whose
        ONNX, run by the reference evaluator, still scores the members' mean logit."""
        self.merge_end_to_end("mean_h,last_h,mean_e,rms_h,rms_e", (7, 7), check_card=False)

    def test_merge_end_to_end(self) -> None:
        self.merge_end_to_end("mean_h,last_h,mean_e", (8, 5), check_card=True)

    def merge_end_to_end(self, features: str, hiddens: tuple, check_card: bool) -> None:
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "calls.jsonl")
            tiny_corpus(data)
            common = ["--data", data, "--vocab-size", str(VOCAB), "--arch", "pooled", "--embed", "6",
                      "--epochs", "1", "--threshold-long", "4", "--concat", "0", "--batch-tokens", "2048",
                      "--features", features, "--pool-norm", "sqrt", "--max-logit", "12",
                      "--split-seed", "7"]
            H = sum(hiddens)
            for seed, hidden in zip((1, 2), hiddens):
                out = os.path.join(d, f"m{seed}")
                self.assertEqual(train.main(common + ["--out", out, "--seed", str(seed), "--hidden", str(hidden),
                                                      "--no-export"]), 0)
            ens = os.path.join(d, "ens")
            members = [os.path.join(d, f"m{s}", "model.pt") for s in (1, 2)]
            self.assertEqual(train.main(common + ["--out", ens, "--seed", "1", "--merge", ",".join(members)]), 0)
            rep = report(ens)
            self.assertEqual([m["seed"] for m in rep["ensemble"]], [1, 2])
            self.assertEqual(rep["architecture"]["hidden"], H)
            self.assertEqual(rep["architecture"]["pooled_state"], H + 12 + 1)  # no max_h part
            # Same validation split for every member and the merge.
            splits = {json.dumps(report(p)["data"]["validation_calls"]) + json.dumps(report(p)["data"]["train_phishing"])
                      for p in (os.path.join(d, "m1"), os.path.join(d, "m2"), ens)}
            self.assertEqual(len(splits), 1)
            # The merged ONNX ranks as the members' mean logit (up to the merged temperature).
            ms = [load_checkpoint(p) for p in members]
            ids = torch.randint(1, VOCAB, (4, 20))
            lens = torch.tensor([20, 13, 5, 1])
            with torch.no_grad():
                logits = [m.train_logits(ids, lens)[0] for m in ms]
                want = sum(l[:, 1] - l[:, 0] for l in logits) / 2
            graph = onnx.load(os.path.join(ens, "model.onnx"))
            z = np.zeros((1, 4, H), np.float32)
            probs = onnxref.run(graph, {"input_ids": ids.numpy(), "lengths": lens.numpy(), "h0": z, "c0": z,
                                        "p0": np.zeros((4, H + 13), np.float32)})["probs"]
            got = np.log(probs[:, 1]) - np.log(probs[:, 0])
            T = rep["temperature"]["T"]
            np.testing.assert_allclose(got * T, want.numpy(), rtol=1e-4, atol=1e-4)
            if not check_card:
                return
            # The card says what the core is: both members, their size and seeds.
            import make_bundle
            self.assertEqual(make_bundle.core_words(rep), "2 unidirectional LSTMs (seeds 1, 2) merged into one "
                             "block-diagonal LSTM (embedding 12, hidden 13 in all) that scores their mean logit")
            self.assertEqual(make_bundle.core_words({"architecture": {"embed": 8}}), "Unidirectional LSTM")


if __name__ == "__main__":
    unittest.main()
