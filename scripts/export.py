#!/usr/bin/python3
"""Export a callwatch model to ONNX with the callwatch signature (DESIGN.md).

v2 (cwmodel.CallWatchPooled, the current recipe):
  inputs:  input_ids int64 [batch, seq] (right-padded), lengths int64 [batch],
           h0, c0 float32 [layers, batch, hidden], p0 float32 [batch, P]
  outputs: probs float32 [batch, 2] (normal, phishing), hn, cn float32
           [layers, batch, hidden], pn float32 [batch, P], family_probs
           float32 [batch, F] (order = the model's sorted family names)
  All-zero h0, c0, p0 is a fresh call; feeding hn, cn, pn back as h0, c0, p0
  continues it. P = 2*hidden + embed + 1 (layout: cwmodel.CallWatchPooled;
  opaque to the runtime).

v1 (cwmodel.CallWatchLSTM, older bundles):
  inputs:  input_ids, lengths, h0, c0; outputs: probs, hn, cn, all at each
  row's last real token.

Route: trace an unpacked twin of the model (cwmodel.UnpackedForExport) with
h0/c0 as graph inputs (so no batch size is baked in), then rewrite the graph
with the onnx package: Cast(lengths -> int32) wired into input 4
(sequence_lens) of every LSTM node. With sequence_lens each LSTM stops
updating a row after its length, so Y_h/Y_c -- and hn, cn, probs computed
from them -- are taken at the row's last real token, exactly like PyTorch's
packed forward. One LSTM op per layer, opset 17.

Works with torch 1.13 and 2.x (dynamo=False where the argument exists, so
both use the TorchScript exporter).

CLI: export.py --checkpoint model.pt --out model.onnx [--no-verify]
"""

from __future__ import annotations

import argparse
import inspect
import io
import sys
import warnings
from typing import Dict, List, Optional

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

import onnxref
from cwmodel import (CallWatchLSTM, CallWatchPooled, LABELS, PAD_ID, PooledForExport,
                     UnpackedForExport, load_checkpoint)

OPSET = 17
INPUTS = ("input_ids", "lengths", "h0", "c0")
OUTPUTS = ("probs", "hn", "cn")
INPUTS_V2 = ("input_ids", "lengths", "h0", "c0", "p0")
OUTPUTS_V2 = ("probs", "hn", "cn", "pn", "family_probs")
PROB_OUTPUTS = ("probs", "family_probs")
LENGTHS_I32 = "lengths_int32"
# Ops a v2 graph may contain (the Go interpreter implements exactly these).
ALLOWED_OPS_V2 = frozenset((
    "LSTM", "Gather", "Add", "Sub", "Mul", "Div", "Relu", "Max", "Min", "ReduceSum", "ReduceMax",
    "Range", "Less", "Cast", "Unsqueeze", "Squeeze", "Concat", "Gemm", "MatMul", "Softmax", "Shape",
    "Slice", "Reshape", "Transpose", "Expand", "Constant", "ConstantOfShape", "Where", "Equal",
    "Tanh", "Sigmoid", "Clip", "Sqrt", "Log", "Neg"))
# Parity tolerances between the exported graph (numpy reference, float64) and
# PyTorch (float32):
# - probabilities (probs, family_probs) are bounded in [0, 1]: strict absolute
#   |got - want| <= PROB_TOLERANCE;
# - state (hn, cn, pn) on |got - want| / max(1, |want|) <= TOLERANCE. The
#   cell state c is unbounded (hundreds on long calls), and pn holds running
#   sums that grow with the number of tokens (sum of h_t and of embeddings,
#   the token count). Where the float32 drift comes from: each backend adds the
#   per-token terms in its own order (PyTorch's reduction tree, ORT's, the Go
#   loop, and a streamed call adds one partial sum per segment), and every
#   float32 addition rounds at ~6e-8 relative to the running total, so the
#   absolute error of a sum grows with its size and with n (worst case
#   ~ n * 6e-8 * |sum|, typically ~ sqrt(n) * 6e-8 * |sum|), while its
#   relative error stays small. The means the head reads (sum / n) carry only
#   that relative error, which is why probabilities stay tight. Because the
#   sum of h_t can cancel (|sum| small while sum |h_t| ~ n), pn is compared on
#   |got - want| / max(1, |want|, n_row), n_row = the row's token count (the
#   last component of pn): each term is O(1), so the rounding error of a sum
#   is bounded by ~ n_row * eps (scaled_diff_pooled).
TOLERANCE = 1e-5
PROB_TOLERANCE = 1e-5


def scaled_diff(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max(1, |want|): absolute below 1, relative above."""
    got = np.asarray(got, np.float64).reshape(-1)
    want = np.asarray(want, np.float64).reshape(-1)
    return float((np.abs(got - want) / np.maximum(1.0, np.abs(want))).max())


def scaled_diff_pooled(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max(1, |want|, n_row) over a pooled state [B, P] whose last column is
    the row's token count n_row (see TOLERANCE)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if want.ndim != 2:
        return scaled_diff(got, want)
    scale = np.maximum(np.maximum(1.0, np.abs(want)), np.abs(want[:, -1:]))
    return float((np.abs(got - want) / scale).max())


class ExportError(Exception):
    """The exported graph does not have the callwatch shape or semantics."""


def signature(model: torch.nn.Module) -> tuple:
    """(input names, output names) of the graph exported for model."""
    if isinstance(model, CallWatchPooled):
        return INPUTS_V2, OUTPUTS_V2
    return INPUTS, OUTPUTS


_DYNAMIC_AXES = {
    "input_ids": {0: "batch", 1: "seq"}, "lengths": {0: "batch"}, "h0": {1: "batch"},
    "c0": {1: "batch"}, "p0": {0: "batch"}, "probs": {0: "batch"}, "hn": {1: "batch"},
    "cn": {1: "batch"}, "pn": {0: "batch"}, "family_probs": {0: "batch"},
}


def _torch_export(module: torch.nn.Module, args: tuple, f: io.BytesIO,
                  inputs: tuple = INPUTS, outputs: tuple = OUTPUTS) -> None:
    kwargs = dict(
        input_names=list(inputs),
        output_names=list(outputs),
        opset_version=OPSET,
        do_constant_folding=True,
        dynamic_axes={k: v for k, v in _DYNAMIC_AXES.items() if k in inputs + outputs},
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with warnings.catch_warnings():
        # The batch-size warning is about implicit zero states; ours are inputs.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, f, **kwargs)


def _wire_lengths(model: onnx.ModelProto, inputs: tuple = INPUTS) -> None:
    g = model.graph
    names = [i.name for i in g.input]
    if "lengths" not in names:
        # The unpacked twin never reads lengths, so the tracer drops the input.
        g.input.insert(1, helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]))
    # Inputs in contract order (after the exporter's own order, initializers excluded).
    by_name = {i.name: i for i in g.input}
    ordered = [by_name[n] for n in inputs] + [i for i in g.input if i.name not in inputs]
    copies = [onnx.ValueInfoProto() for _ in ordered]
    for c, o in zip(copies, ordered):
        c.CopyFrom(o)
    del g.input[:]
    g.input.extend(copies)

    lstms = [n for n in g.node if n.op_type == "LSTM"]
    if not lstms:
        raise ExportError("no LSTM node in the exported graph")
    cast = helper.make_node("Cast", ["lengths"], [LENGTHS_I32], name="lengths_to_int32",
                            to=TensorProto.INT32)
    g.node.insert(0, cast)
    for n in lstms:
        while len(n.input) < 5:
            n.input.append("")
        if n.input[4]:
            raise ExportError(f"LSTM {n.name} already has sequence_lens {n.input[4]!r}")
        n.input[4] = LENGTHS_I32


def _producers(model: onnx.ModelProto) -> Dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output if o}


def check_structure(model: onnx.ModelProto, layers: int, v2: Optional[bool] = None) -> None:
    """Checks the contract that does not need numbers: names, types, LSTM wiring,
    and for v2 graphs the op set."""
    g = model.graph
    got_in = [i.name for i in g.input]
    got_out = [o.name for o in g.output]
    if v2 is None:
        v2 = "p0" in got_in
    inputs, outputs = (INPUTS_V2, OUTPUTS_V2) if v2 else (INPUTS, OUTPUTS)
    if got_in != list(inputs):
        raise ExportError(f"graph inputs {got_in}, want {list(inputs)}")
    if got_out != list(outputs):
        raise ExportError(f"graph outputs {got_out}, want {list(outputs)}")
    want_types = {"input_ids": TensorProto.INT64, "lengths": TensorProto.INT64,
                  "h0": TensorProto.FLOAT, "c0": TensorProto.FLOAT, "probs": TensorProto.FLOAT,
                  "hn": TensorProto.FLOAT, "cn": TensorProto.FLOAT, "p0": TensorProto.FLOAT,
                  "pn": TensorProto.FLOAT, "family_probs": TensorProto.FLOAT}
    for vi in list(g.input) + list(g.output):
        if vi.type.tensor_type.elem_type != want_types[vi.name]:
            raise ExportError(f"{vi.name} has element type {vi.type.tensor_type.elem_type}")
    lstms = [n for n in g.node if n.op_type == "LSTM"]
    if len(lstms) != layers:
        raise ExportError(f"{len(lstms)} LSTM nodes for {layers} layers")
    for n in lstms:
        if len(n.input) < 5 or n.input[4] != LENGTHS_I32:
            raise ExportError(f"LSTM {n.name} sequence_lens is not wired to lengths")
    # hn/cn must be the LSTMs' Y_h/Y_c, stacked layer by layer.
    prod = _producers(model)
    for out, port in (("hn", 1), ("cn", 2)):
        v = out
        while prod[v].op_type == "Identity":
            v = prod[v].input[0]
        n = prod[v]
        if n.op_type == "Concat" and helper.get_attribute_value(n.attribute[0]) == 0:
            srcs = list(n.input)
        elif n.op_type == "LSTM":
            srcs = [v]
        else:
            raise ExportError(f"{out} is produced by {n.op_type}, want LSTM states (concatenated)")
        want = [l.output[port] for l in lstms]
        if srcs != want:
            raise ExportError(f"{out} comes from {srcs}, want LSTM outputs {want}")
    if v2:
        # The mask needs shape ops (Shape/Range/...); a baked-in size would show up in verify,
        # which runs batch sizes and lengths unlike the tracing input.
        bad = sorted({n.op_type for n in g.node} - ALLOWED_OPS_V2)
        if bad:
            raise ExportError(f"ops outside the v2 set: {bad}")
        return
    # Nothing may carry a traced batch size: no shape-building ops at all.
    for n in g.node:
        if n.op_type in ("Reshape", "Expand", "ConstantOfShape", "Tile"):
            raise ExportError(f"unexpected shape op {n.op_type} ({n.name}) may bake in a size")


def op_list(model: onnx.ModelProto) -> List[str]:
    return sorted({n.op_type for n in model.graph.node})


def _numpy_state(model: CallWatchLSTM, batch: int) -> np.ndarray:
    return np.zeros((model.cfg.layers, batch, model.cfg.hidden), np.float32)


def random_p0(model: CallWatchPooled, batch: int, gen: torch.Generator) -> torch.Tensor:
    """A plausible nonzero pooled state: sums of earlier tokens, a non-negative max, a count."""
    H, E = model.cfg.hidden, model.cfg.embed
    n = torch.randint(1, 300, (batch, 1), generator=gen).float()
    sum_h = torch.randn(batch, H, generator=gen) * 0.3 * n
    max_h = [torch.rand(batch, H, generator=gen) * 0.8] if model.cfg.pool_max_h else []
    sum_e = torch.randn(batch, E, generator=gen) * 0.2 * n
    max_e = [torch.rand(batch, E, generator=gen) * 0.8] if model.has_max_e else []
    att: List[torch.Tensor] = []
    if "att_sum" in model.layout:
        w = torch.rand(batch, 1, generator=gen) * n
        att = [torch.randn(batch, H, generator=gen) * 0.3 * w, w]
    return torch.cat([sum_h] + max_h + [sum_e] + max_e + att + [n], 1)


def compare(name: str, got: np.ndarray, want: np.ndarray) -> float:
    """Parity measure of one output, as a fraction of its tolerance (<= 1 passes)."""
    if name in PROB_OUTPUTS:
        d = float(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)).max())
        return d / PROB_TOLERANCE
    if name in ("pn", "p0"):
        return scaled_diff_pooled(got, want) / TOLERANCE
    return scaled_diff(got, want) / TOLERANCE


def verify(model: torch.nn.Module, onnx_model: onnx.ModelProto, seed: int = 1234) -> float:
    """Runs the graph (numpy reference) against PyTorch's packed forward on
    batch sizes and lengths unlike the tracing input, with garbage padding and
    nonzero states; returns the worst difference (absolute on probabilities,
    scaled_diff on states; both tolerances are 1e-5)."""
    if isinstance(model, CallWatchPooled):
        return _verify_v2(model, onnx_model, seed)
    gen = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    worst = 0.0
    for lengths in ([1], [9], [5, 1, 17, 17, 3], [2, 40, 7, 1, 33, 12, 40]):
        b, s = len(lengths), max(lengths)
        ids = torch.randint(1, cfg.vocab, (b, s), generator=gen)
        lens = torch.tensor(lengths, dtype=torch.int64)
        for r, l in enumerate(lengths):
            ids[r, l:] = torch.randint(0, cfg.vocab, (s - l,), generator=gen)  # garbage padding
        h0 = torch.randn(cfg.layers, b, cfg.hidden, generator=gen) * 0.5
        c0 = torch.randn(cfg.layers, b, cfg.hidden, generator=gen) * 0.5
        with torch.no_grad():
            want = model(ids, lens, h0, c0)
        got = onnxref.run(onnx_model, {"input_ids": ids.numpy(), "lengths": lens.numpy(),
                                       "h0": h0.numpy(), "c0": c0.numpy()})
        for name, w in zip(OUTPUTS, want):
            g = got[name]
            if g.shape != tuple(w.shape):
                raise ExportError(f"{name}: shape {g.shape}, want {tuple(w.shape)} (lengths {lengths})")
            worst = max(worst, scaled_diff(g, w.numpy()))
    if worst > TOLERANCE:
        raise ExportError(f"exported graph differs from PyTorch by {worst:.3g} > {TOLERANCE}")
    return worst


def _verify_v2(model: CallWatchPooled, onnx_model: onnx.ModelProto, seed: int,
               verbose: bool = False) -> float:
    gen = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    worst = 0.0  # as a fraction of the tolerance
    for k, lengths in enumerate(([1], [9], [5, 1, 17, 17, 3], [2, 40, 7, 1, 33, 12, 40], [300, 4])):
        b, s = len(lengths), max(lengths) + (k % 2)
        ids = torch.randint(1, cfg.vocab, (b, s), generator=gen)
        lens = torch.tensor(lengths, dtype=torch.int64)
        for r, l in enumerate(lengths):
            ids[r, l:] = torch.randint(0, cfg.vocab, (s - l,), generator=gen)  # garbage padding
        if k % 2:
            h0 = torch.randn(cfg.layers, b, cfg.hidden, generator=gen) * 0.5
            c0 = torch.randn(cfg.layers, b, cfg.hidden, generator=gen) * 0.5
            p0 = random_p0(model, b, gen)
        else:
            h0, c0, p0 = model.zero_state(b)
        with torch.no_grad():
            want = model(ids, lens, h0, c0, p0)
        got = onnxref.run(onnx_model, {"input_ids": ids.numpy(), "lengths": lens.numpy(),
                                       "h0": h0.numpy(), "c0": c0.numpy(), "p0": p0.numpy()})
        for name, w in zip(OUTPUTS_V2, want):
            g = got[name]
            if g.shape != tuple(w.shape):
                raise ExportError(f"{name}: shape {g.shape}, want {tuple(w.shape)} (lengths {lengths})")
            worst = max(worst, compare(name, g, w.numpy()))
            if verbose:
                print(f"verify v2 lengths {lengths}: {name} {compare(name, g, w.numpy()):.3g} x tol")
    if worst > 1.0:
        raise ExportError(f"exported graph differs from PyTorch by {worst:.3g} x the tolerance")
    return worst * TOLERANCE


def export_onnx(model: torch.nn.Module, path: str, metadata: Optional[Dict[str, str]] = None,
                check: bool = True, log=sys.stderr) -> onnx.ModelProto:
    """Exports model (CallWatchLSTM: v1 signature; CallWatchPooled: v2) to path and
    returns the written ModelProto.

    With check, runs onnx.checker, the structural contract checks and a
    numeric comparison against PyTorch's packed forward."""
    model = model.eval()
    cfg = model.cfg
    v2 = isinstance(model, CallWatchPooled)
    inputs, outputs = signature(model)
    batch, seq = 3, 5  # deliberately unlike any real batch: a baked-in size would show up in verify
    args = (torch.randint(1, cfg.vocab, (batch, seq)), torch.tensor([5, 2, 4], dtype=torch.int64),
            torch.zeros(cfg.layers, batch, cfg.hidden), torch.zeros(cfg.layers, batch, cfg.hidden))
    if v2:
        args = args + (torch.zeros(batch, model.pooled_size),)
    buf = io.BytesIO()
    # The wrapper must be in eval mode: torch.onnx.export restores the wrapper's mode on the
    # whole module tree afterwards, which would leave dropout on in the model itself.
    twin = (PooledForExport(model) if v2 else UnpackedForExport(model)).eval()
    with torch.no_grad():
        _torch_export(twin, args, buf, inputs, outputs)
    model.eval()
    m = onnx.load_from_string(buf.getvalue())
    _wire_lengths(m, inputs)
    meta = {
        "callwatch.layers": str(cfg.layers),
        "callwatch.hidden": str(cfg.hidden),
        "callwatch.embed": str(cfg.embed),
        "callwatch.vocab": str(cfg.vocab),
        "callwatch.labels": ",".join(LABELS),
        "callwatch.pad_id": str(PAD_ID),
        "callwatch.torch": torch.__version__,
    }
    if v2:
        meta.update({"callwatch.arch": "pooled", "callwatch.pooled": str(model.pooled_size),
                     "callwatch.families": ",".join(model.families),
                     "callwatch.features": ",".join(cfg.features),
                     "callwatch.pool_norm": cfg.pool_norm,
                     "callwatch.pool_max_h": "1" if cfg.pool_max_h else "0"})
        if cfg.pool_cap > 0:
            meta["callwatch.pool_cap"] = str(cfg.pool_cap)
        if cfg.norm_groups != 1:
            meta["callwatch.norm_groups"] = str(cfg.norm_groups)
    meta.update(metadata or {})
    del m.metadata_props[:]
    for k in sorted(meta):
        m.metadata_props.add(key=k, value=str(meta[k]))
    m.producer_name = "callwatch-export"
    m.doc_string = ("callwatch LSTM v2: probs (normal, phishing), hn, cn, pooled state pn, family_probs"
                    if v2 else "callwatch LSTM: probs (normal, phishing), hn, cn at each row's last real token")
    if check:
        onnx.checker.check_model(m, full_check=True)
        check_structure(m, cfg.layers, v2)
        diff = verify(model, m)
        print(f"export: ops {op_list(m)}; max scaled |onnx - torch| = {diff:.3g}", file=log)
    onnx.save(m, path)
    return m


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="checkpoint written by train.py (model.pt)")
    ap.add_argument("--out", required=True, help="path of the ONNX file to write")
    ap.add_argument("--no-verify", action="store_true", help="skip checker and parity checks")
    a = ap.parse_args(argv)
    model = load_checkpoint(a.checkpoint)
    m = export_onnx(model, a.out, check=not a.no_verify)
    print(" ".join(op_list(m)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
