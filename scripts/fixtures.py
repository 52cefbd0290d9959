"""PyTorch reference outputs for the Go backends' parity tests.

Writes fixtures.json in the format the Go tests read:

  {"model": "tiny.onnx", "layers": L, "hidden": H, "vocab": V,
   "cases": [{"name", "batch": B, "seq": S, "input_ids": [B*S ints, row-major],
              "lengths": [B], "h0": [L*B*H] or null, "c0": ... or null,
              "probs": [B*2], "hn": [L*B*H], "cn": [L*B*H],
              "continues": "<name>"   # only where h0/c0 are that case's hn/cn
             }, ...]}

null h0/c0 mean zeros. Floats are written with repr of the float32 value
widened to float64, so they parse back to the exact float32.

v2 models (cwmodel.CallWatchPooled) add to the header "arch": "pooled",
"pooled": P, "families": [F names] and to every case "p0": [B*P] or null
(zeros), "pn": [B*P], "family_probs": [B*F]; a "continues" case also takes
that case's pn as its p0. Compare probs and family_probs absolutely, hn/cn
relatively (|d| / max(1, |want|)) and pn relatively to max(1, |want|, n_row),
n_row being the row's token count, pn's last column (export.py, TOLERANCE).
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

import onnxref
from export import compare, scaled_diff
from cwmodel import CallWatchLSTM, CallWatchPooled


def _flat_f(t: torch.Tensor) -> List[float]:
    return [float(x) for x in t.detach().to(torch.float32).reshape(-1).tolist()]


class CaseBuilder:
    """Builds named cases and computes PyTorch's packed forward for each."""

    def __init__(self, model: CallWatchLSTM, seed: int) -> None:
        self.model = model.eval()
        self.cfg = model.cfg
        self.v2 = isinstance(model, CallWatchPooled)
        self.rng = random.Random(seed)
        self.cases: List[Dict[str, Any]] = []
        self._by_name: Dict[str, Dict[str, Any]] = {}
        self._state: Dict[str, tuple] = {}

    def tokens(self, n: int, low: int = 1) -> List[int]:
        return [self.rng.randrange(low, self.cfg.vocab) for _ in range(n)]

    def state(self, batch: int, scale: float = 0.8) -> torch.Tensor:
        vals = [self.rng.uniform(-scale, scale)
                for _ in range(self.cfg.layers * batch * self.cfg.hidden)]
        return torch.tensor(vals, dtype=torch.float32).reshape(self.cfg.layers, batch, self.cfg.hidden)

    def pooled(self, batch: int) -> Optional[torch.Tensor]:
        """A plausible nonzero pooled state (v2): sums over earlier tokens, max >= 0, a count."""
        if not self.v2:
            return None
        rows = []
        for _ in range(batch):
            n = float(self.rng.randint(1, 200))
            row: List[float] = []
            w = 0.0
            for part, (lo, hi) in self.model.layout.items():
                size = hi - lo
                if part == "sum_h":
                    row += [self.rng.uniform(-0.4, 0.4) * n for _ in range(size)]
                elif part in ("max_h", "max_e"):
                    row += [self.rng.uniform(0.0, 0.9) for _ in range(size)]
                elif part == "sum_e":
                    row += [self.rng.uniform(-0.3, 0.3) * n for _ in range(size)]
                elif part == "att_sum":  # gated sum: its weight total comes next
                    w = self.rng.uniform(0.0, 1.0) * n
                    row += [self.rng.uniform(-0.4, 0.4) * w for _ in range(size)]
                elif part == "att_w":
                    row.append(w)
                elif part == "n":
                    row.append(n)
                else:
                    raise ValueError(f"no fixture values for pooled part {part!r}")
            rows.append(row)
        return torch.tensor(rows, dtype=torch.float32)

    def add(self, name: str, rows: Sequence[Sequence[int]], seq: Optional[int] = None,
            pad: str = "garbage", h0: Optional[torch.Tensor] = None,
            c0: Optional[torch.Tensor] = None, continues: Optional[str] = None,
            p0: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Adds a case; rows are the real tokens of each row, padded to seq with
        garbage tokens (pad="garbage") or zeros (pad="zero")."""
        if name in self._by_name:
            raise ValueError(f"duplicate case {name}")
        b = len(rows)
        lengths = [len(r) for r in rows]
        s = seq if seq is not None else max(lengths)
        if min(lengths) < 1 or max(lengths) > s:
            raise ValueError(f"{name}: lengths {lengths} do not fit seq {s}")
        ids: List[int] = []
        for r in rows:
            fill = self.tokens(s - len(r), low=0) if pad == "garbage" else [0] * (s - len(r))
            ids.extend(list(r) + fill)
        if continues is not None:
            h0, c0, p0 = self._state[continues]
        it = torch.tensor(ids, dtype=torch.int64).reshape(b, s)
        lt = torch.tensor(lengths, dtype=torch.int64)
        with torch.no_grad():
            if self.v2:
                probs, hn, cn, pn, fam = self.model(it, lt, h0, c0, p0)
            else:
                probs, hn, cn = self.model(it, lt, h0, c0)
                pn = fam = None
        case: Dict[str, Any] = {
            "name": name, "batch": b, "seq": s, "input_ids": ids, "lengths": lengths,
            "h0": None if h0 is None else _flat_f(h0), "c0": None if c0 is None else _flat_f(c0),
            "probs": _flat_f(probs), "hn": _flat_f(hn), "cn": _flat_f(cn),
        }
        if self.v2:
            case["p0"] = None if p0 is None else _flat_f(p0)
            case["pn"] = _flat_f(pn)
            case["family_probs"] = _flat_f(fam)
        if continues is not None:
            case["continues"] = continues
        self.cases.append(case)
        self._by_name[name] = case
        self._state[name] = (hn.clone(), cn.clone(), None if pn is None else pn.clone())
        return case

    def add_standard(self, long_len: int = 300) -> None:
        """The case families the Go backends must agree on."""
        for n in sorted({1, 2, 3, 5, 7, 8, 16, 31, 64, 100, 128, long_len}):
            self.add(f"single_len{n}", [self.tokens(n)])
        for n, s in ((1, 4), (7, 20), (64, 70)):
            self.add(f"single_len{n}_padded_seq{s}", [self.tokens(n)], seq=s)
        self.add("single_zero_token_inside", [[5, 0, 9, 0, 0, 3, self.cfg.vocab - 1]])
        mixed = ([5, 1, 17, 17, 3], [1, 1], [2, 40, 7, 1, 33, 12, 40], [long_len, 1],
                 [64, 63, 62, 1], [9, 9, 9], [1, 2, 3, 4, 5, 6, 7, 8])
        for i, lens in enumerate(mixed):
            self.add(f"mixed{i}_" + "_".join(map(str, lens)), [self.tokens(n) for n in lens])
        self.add("mixed_zero_padding", [self.tokens(n) for n in (5, 1, 17, 17, 3)], pad="zero")
        self.add("mixed_extra_padding", [self.tokens(n) for n in (4, 2, 6)], seq=11)
        # The same row alone and inside a padded batch must give the same row outputs.
        for j, (n, others) in enumerate(((6, [1, 20, 3]), (1, [30, 2]), (25, [25, 40, 1, 7]))):
            row = self.tokens(n)
            self.add(f"alone{j}_len{n}", [row])
            batch = [self.tokens(m) for m in others]
            batch.insert(1, row)
            self.add(f"inbatch{j}_len{n}_at1", batch)
        # Nonzero initial state.
        for j, lens in enumerate(([1], [12], [50], [5, 1, 17, 17, 3], [3, 30])):
            b = len(lens)
            self.add(f"state{j}_" + "_".join(map(str, lens)), [self.tokens(n) for n in lens],
                     h0=self.state(b), c0=self.state(b), p0=self.pooled(b))
        # State carried across calls: the first part, then the rest.
        splits = (([10], [7]), ([1], [1]), ([40], [260]), ([5, 1, 17], [2, 9, 1]),
                  ([3, 8], [8, 3]), ([16, 2, 30, 1], [1, 20, 4, 11]))
        for j, (first, rest) in enumerate(splits):
            b = len(first)
            start_state = (self.state(b), self.state(b), self.pooled(b)) if j % 2 else (None, None, None)
            a = f"carry{j}_part1"
            self.add(a, [self.tokens(n) for n in first], h0=start_state[0], c0=start_state[1],
                     p0=start_state[2])
            self.add(f"carry{j}_part2", [self.tokens(n) for n in rest], continues=a)
        # A three-part stream on one row.
        self.add("stream_part1", [self.tokens(4)])
        self.add("stream_part2", [self.tokens(13)], continues="stream_part1")
        self.add("stream_part3", [self.tokens(1)], continues="stream_part2")
        # Random batches to fill out the space.
        for j in range(12):
            b = self.rng.randint(1, 9)
            lens = [self.rng.randint(1, 48) for _ in range(b)]
            s = max(lens) + self.rng.choice((0, 0, 1, 5))
            with_state = self.rng.random() < 0.4
            self.add(f"random{j}_b{b}", [self.tokens(n) for n in lens], seq=s,
                     h0=self.state(b) if with_state else None,
                     c0=self.state(b) if with_state else None,
                     p0=self.pooled(b) if with_state else None)
        if self.v2:
            # Streaming a call in segments equals scoring it whole (the pooled state accumulates).
            row = self.tokens(long_len)
            self.add("whole_call", [row])
            cut1, cut2 = long_len // 3, long_len // 3 + 7
            self.add("segments_part1", [row[:cut1]])
            self.add("segments_part2", [row[cut1:cut2]], continues="segments_part1")
            self.add("segments_part3", [row[cut2:]], continues="segments_part2")

    def check_onnx(self, onnx_model) -> float:
        """Worst difference between the numpy ONNX reference and the fixtures:
        export.scaled_diff (absolute below 1, relative above) for v1; for v2
        export.compare's measure times the tolerance (absolute on probabilities)."""
        L, H = self.cfg.layers, self.cfg.hidden
        worst = 0.0
        if self.v2:
            P = self.model.pooled_size
            for c in self.cases:
                b, s = c["batch"], c["seq"]
                zeros = np.zeros((L, b, H), np.float32)
                feeds = {
                    "input_ids": np.array(c["input_ids"], np.int64).reshape(b, s),
                    "lengths": np.array(c["lengths"], np.int64),
                    "h0": zeros if c["h0"] is None else np.array(c["h0"], np.float32).reshape(L, b, H),
                    "c0": zeros if c["c0"] is None else np.array(c["c0"], np.float32).reshape(L, b, H),
                    "p0": (np.zeros((b, P), np.float32) if c["p0"] is None
                           else np.array(c["p0"], np.float32).reshape(b, P)),
                }
                got = onnxref.run(onnx_model, feeds)
                for k in ("probs", "hn", "cn", "pn", "family_probs"):
                    want = np.array(c[k], np.float64).reshape(got[k].shape)
                    worst = max(worst, compare(k, got[k], want) * 1e-5)
            return worst
        for c in self.cases:
            b, s = c["batch"], c["seq"]
            zeros = np.zeros((L, b, H), np.float32)
            feeds = {
                "input_ids": np.array(c["input_ids"], np.int64).reshape(b, s),
                "lengths": np.array(c["lengths"], np.int64),
                "h0": zeros if c["h0"] is None else np.array(c["h0"], np.float32).reshape(L, b, H),
                "c0": zeros if c["c0"] is None else np.array(c["c0"], np.float32).reshape(L, b, H),
            }
            got = onnxref.run(onnx_model, feeds)
            for k in ("probs", "hn", "cn"):
                worst = max(worst, scaled_diff(got[k], np.array(c[k], np.float64)))
        return worst

    def write(self, path: str, model_file: str) -> None:
        doc = {"model": model_file, "layers": self.cfg.layers, "hidden": self.cfg.hidden,
               "vocab": self.cfg.vocab}
        if self.v2:
            doc.update({"arch": "pooled", "embed": self.cfg.embed, "pooled": self.model.pooled_size,
                        "families": list(self.model.families)})
        doc["cases"] = self.cases
        with open(path, "w", encoding="utf-8") as f:
            # One case per line keeps diffs of the golden file readable.
            f.write("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}"
                                    for k, v in doc.items() if k != "cases"))
            f.write(', "cases": [\n')
            f.write(",\n".join(json.dumps(c) for c in self.cases))
            f.write("\n]}\n")
