#!/usr/bin/python3
"""Regenerates packed.onnx and packed.json for runtime/native's tests.

A second export path: the model runs the LSTM through
pack_padded_sequence(enforce_sorted=False), so the graph sorts rows with
TopK, gathers and scatters them back (ReduceProd, Range, ScatterElements),
unlike runtime/testdata/tiny.onnx, whose exporter wires lengths straight
into LSTM's sequence_lens. Outputs are PyTorch's, in the fixtures format of
runtime/testdata. Works with torch 1.13 and 2.x.

Run:  /usr/bin/python3 runtime/native/testdata/gen_packed.py
"""

import inspect
import json
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
V, E, H, L = 50, 8, 6, 2


class Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L, batch_first=True)
        self.fc = nn.Linear(H, 2)

    def forward(self, input_ids, lengths, h0, c0):
        x = self.emb(input_ids)
        p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (hn, cn) = self.lstm(p, (h0, c0))
        return torch.softmax(self.fc(hn[-1]), -1), hn, cn


def main() -> None:
    torch.manual_seed(0)
    m = Packed().eval()
    B, S = 3, 7
    args = (torch.randint(0, V, (B, S)), torch.tensor([7, 3, 1]), torch.randn(L, B, H), torch.randn(L, B, H))
    kw = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(
        m, args, os.path.join(HERE, "packed.onnx"), opset_version=17,
        input_names=["input_ids", "lengths", "h0", "c0"], output_names=["probs", "hn", "cn"],
        dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "lengths": {0: "batch"}, "h0": {1: "batch"},
                      "c0": {1: "batch"}, "probs": {0: "batch"}, "hn": {1: "batch"}, "cn": {1: "batch"}},
        **kw)
    cases = []
    specs = {"b3_state": (3, 7, [7, 3, 1], True), "b1": (1, 5, [5], False), "b2_zero": (2, 4, [2, 4], False),
             "b4_ties": (4, 9, [9, 4, 4, 1], True)}
    with torch.no_grad():
        for name, (b, s, lens, state) in specs.items():
            ids = torch.randint(0, V, (b, s))
            h0 = torch.randn(L, b, H) if state else torch.zeros(L, b, H)
            c0 = torch.randn(L, b, H) if state else torch.zeros(L, b, H)
            p, hn, cn = m(ids, torch.tensor(lens), h0, c0)
            cases.append({"name": name, "batch": b, "seq": s, "input_ids": ids.flatten().tolist(), "lengths": lens,
                          "h0": h0.flatten().tolist() if state else None, "c0": c0.flatten().tolist() if state else None,
                          "probs": p.flatten().tolist(), "hn": hn.flatten().tolist(), "cn": cn.flatten().tolist()})
        # A call scored in two parts: part2 starts from part1's final state.
        ids1, ids2 = torch.randint(1, V, (2, 6)), torch.randint(1, V, (2, 5))
        l1, l2 = [6, 2], [3, 5]
        z = torch.zeros(L, 2, H)
        p1, h1, c1 = m(ids1, torch.tensor(l1), z, z)
        p2, h2, c2 = m(ids2, torch.tensor(l2), h1, c1)
        cases.append({"name": "carry_part1", "batch": 2, "seq": 6, "input_ids": ids1.flatten().tolist(), "lengths": l1,
                      "h0": None, "c0": None, "probs": p1.flatten().tolist(), "hn": h1.flatten().tolist(),
                      "cn": c1.flatten().tolist()})
        cases.append({"name": "carry_part2", "continues": "carry_part1", "batch": 2, "seq": 5,
                      "input_ids": ids2.flatten().tolist(), "lengths": l2, "h0": h1.flatten().tolist(),
                      "c0": c1.flatten().tolist(), "probs": p2.flatten().tolist(), "hn": h2.flatten().tolist(),
                      "cn": c2.flatten().tolist()})
    with open(os.path.join(HERE, "packed.json"), "w") as f:
        json.dump({"model": "packed.onnx", "layers": L, "hidden": H, "vocab": V, "cases": cases}, f)


if __name__ == "__main__":
    main()
