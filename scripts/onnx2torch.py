#!/usr/bin/python3
"""Rebuild a PyTorch model from an exported callwatch ONNX file, so that any bundle can be
fine-tuned (`callwatch train --from BUNDLE`) without its training checkpoint.

    /usr/bin/python3 scripts/onnx2torch.py --onnx models/ko-vishing-lstm/model.onnx --out model.pt

Sizes come from the graph (embedding table, LSTM nodes, head weights) and the exporter's metadata
(callwatch.arch, callwatch.features, callwatch.families, callwatch.pool_norm,
callwatch.pool_cap, callwatch.norm_groups). The LSTM weights are found through each
LSTM node's inputs (their initializer names are anonymous) and put back in PyTorch's gate order:
ONNX stores W, R, B as i, o, f, c; PyTorch wants i, f, g(c), o; B is [W_b | R_b]. The rebuilt
model is then checked against the graph itself (scripts/onnxref.py) on random inputs, so a wrong
mapping fails here, not in training.

Works with torch 1.13 (Debian) and torch 2.x.
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List

import numpy as np
import onnx
import torch
from onnx import numpy_helper

import onnxref
from cwmodel import ModelConfig, build_model, save_checkpoint

# ONNX gate blocks (i, o, f, c) -> PyTorch (i, f, g, o)
_TORCH_FROM_ONNX = (0, 2, 3, 1)


class ConvertError(Exception):
    """The ONNX file is not a callwatch export this script understands."""


def _reorder(w: np.ndarray, hidden: int) -> np.ndarray:
    blocks = [w[k * hidden:(k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in _TORCH_FROM_ONNX], 0)


def load_onnx(path: str) -> torch.nn.Module:
    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    inits: Dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    arch = meta.get("callwatch.arch", "last")
    prefix = "m." if arch == "pooled" else ""

    def get(name: str) -> np.ndarray:
        if prefix + name not in inits:
            raise ConvertError(f"{path}: no initializer {prefix + name!r}; not a callwatch {arch} export")
        return inits[prefix + name]

    emb = get("embed.weight")
    lstms = [n for n in m.graph.node if n.op_type == "LSTM"]
    if not lstms:
        raise ConvertError(f"{path}: no LSTM node")
    hidden = int(inits[lstms[0].input[2]].shape[-1])
    families = tuple(f for f in meta.get("callwatch.families", "").split(",") if f)
    features = tuple(f for f in meta.get("callwatch.features", "mean_h,max_h,last_h,mean_e").split(",") if f)
    head_hidden = int(inits[prefix + "hid.weight"].shape[0]) if prefix + "hid.weight" in inits else 0
    cfg = ModelConfig(vocab=int(emb.shape[0]), embed=int(emb.shape[1]), hidden=hidden, layers=len(lstms),
                      arch=arch, families=families, head_hidden=head_hidden,
                      features=features if arch == "pooled" else ("mean_h", "max_h", "last_h", "mean_e"),
                      pool_norm=meta.get("callwatch.pool_norm", "mean") if arch == "pooled" else "mean",
                      pool_cap=int(meta.get("callwatch.pool_cap", "0")) if arch == "pooled" else 0,
                      # exports before pool_max_h carried max_h always
                      pool_max_h=meta.get("callwatch.pool_max_h", "1") != "0",
                      norm_groups=int(meta.get("callwatch.norm_groups", "1")) if arch == "pooled" else 1)
    model = build_model(cfg)
    if arch == "pooled" and "callwatch.pooled" in meta and str(model.pooled_size) != meta["callwatch.pooled"]:
        raise ConvertError(f"{path}: pooled state of {meta['callwatch.pooled']} floats in the metadata, "
                           f"but its features and pool_max_h make {model.pooled_size}")
    sd = model.state_dict()
    new: Dict[str, torch.Tensor] = {"embed.weight": torch.from_numpy(emb.copy())}
    for k, node in enumerate(lstms):
        W, R, B = (inits[node.input[i]] for i in (1, 2, 3))
        new[f"lstm.weight_ih_l{k}"] = torch.from_numpy(_reorder(W[0], hidden).copy())
        new[f"lstm.weight_hh_l{k}"] = torch.from_numpy(_reorder(R[0], hidden).copy())
        new[f"lstm.bias_ih_l{k}"] = torch.from_numpy(_reorder(B[0, :4 * hidden], hidden).copy())
        new[f"lstm.bias_hh_l{k}"] = torch.from_numpy(_reorder(B[0, 4 * hidden:], hidden).copy())
    for name in sd:
        if name in new:
            continue
        new[name] = torch.from_numpy(np.array(get(name)).copy())
    missing = [k for k in sd if k not in new]
    if missing:
        raise ConvertError(f"{path}: no weights for {missing}")
    for k, v in new.items():
        if tuple(v.shape) != tuple(sd[k].shape):
            raise ConvertError(f"{path}: {k} has shape {tuple(v.shape)}, the model wants {tuple(sd[k].shape)}")
    model.load_state_dict(new)
    model.eval()
    verify(model, m, cfg)
    return model


def verify(model: torch.nn.Module, graph: onnx.ModelProto, cfg: ModelConfig, tol: float = 1e-4) -> float:
    """Max |torch - graph| on P(phishing) over random right-padded inputs."""
    rng = np.random.default_rng(0)
    B, S = 3, 17
    ids = rng.integers(1, cfg.vocab, size=(B, S)).astype(np.int64)
    lengths = np.array([S, 9, 1], dtype=np.int64)
    feeds = {"input_ids": ids, "lengths": lengths,
             "h0": np.zeros((cfg.layers, B, cfg.hidden), np.float32),
             "c0": np.zeros((cfg.layers, B, cfg.hidden), np.float32)}
    if cfg.arch == "pooled":
        feeds["p0"] = np.zeros((B, model.pooled_size), np.float32)
    want = onnxref.run(graph, feeds)["probs"]
    with torch.no_grad():
        got = model(torch.from_numpy(ids), torch.from_numpy(lengths))[0].numpy()
    d = float(np.abs(got - want).max())
    if d > tol:
        raise ConvertError(f"rebuilt model differs from the graph by {d:.3g} > {tol}: the weight mapping is wrong")
    return d


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--out", required=True, help="checkpoint to write (cwmodel.save_checkpoint format)")
    a = ap.parse_args(argv)
    try:
        model = load_onnx(a.onnx)
    except ConvertError as e:
        print(f"onnx2torch: {e}", file=sys.stderr)
        return 2
    save_checkpoint(model, a.out, {"from_onnx": a.onnx})
    print(f"onnx2torch: {a.onnx} -> {a.out} ({model.cfg.arch}, vocab {model.cfg.vocab}, "
          f"E{model.cfg.embed} H{model.cfg.hidden} L{model.cfg.layers})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
