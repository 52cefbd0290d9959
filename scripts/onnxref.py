"""A tiny numpy evaluator for the ONNX ops the callwatch exporter emits.

There is no onnxruntime for Python on the build machines, so export.py uses
this to check that the post-processed graph (lengths wired into every LSTM's
sequence_lens) reproduces PyTorch's packed forward pass. It follows the ONNX
operator spec, not PyTorch, and computes in float64 so that differences
against PyTorch's float32 come from PyTorch alone. Unknown ops raise, so a
graph change in a future torch release is noticed instead of mis-evaluated.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

_ONNX_TO_NP = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.BOOL: np.bool_,
}


def _attrs(node: onnx.NodeProto) -> Dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _lstm(node: onnx.NodeProto, ins: List[np.ndarray], attrs: Dict[str, object]) -> List[np.ndarray]:
    if attrs.get("direction", b"forward") not in (b"forward", "forward"):
        raise NotImplementedError(f"LSTM direction {attrs.get('direction')}")
    if int(attrs.get("layout", 0)) != 0:
        raise NotImplementedError("LSTM layout=1")
    for unsupported in ("activations", "clip", "input_forget"):
        if unsupported in attrs and attrs[unsupported]:
            raise NotImplementedError(f"LSTM attribute {unsupported}")
    x, w, r = ins[0], ins[1], ins[2]
    b = ins[3] if len(ins) > 3 and ins[3] is not None else None
    seq_lens = ins[4] if len(ins) > 4 and ins[4] is not None else None
    h = ins[5] if len(ins) > 5 and ins[5] is not None else None
    c = ins[6] if len(ins) > 6 and ins[6] is not None else None
    if len(ins) > 7 and ins[7] is not None:
        raise NotImplementedError("LSTM peepholes")
    seq, batch, _ = x.shape
    hidden = int(attrs["hidden_size"])
    x = x.astype(np.float64)
    w, r = w[0].astype(np.float64), r[0].astype(np.float64)  # [4H, I], [4H, H], gates i,o,f,c
    bias = np.zeros(8 * hidden) if b is None else b[0].astype(np.float64)
    bias = bias[:4 * hidden] + bias[4 * hidden:]
    h = np.zeros((batch, hidden)) if h is None else h[0].astype(np.float64)
    c = np.zeros((batch, hidden)) if c is None else c[0].astype(np.float64)
    lens = np.full(batch, seq) if seq_lens is None else seq_lens.astype(np.int64)
    y = np.zeros((seq, 1, batch, hidden))
    for t in range(seq):
        gates = x[t] @ w.T + h @ r.T + bias
        i = _sigmoid(gates[:, :hidden])
        o = _sigmoid(gates[:, hidden:2 * hidden])
        f = _sigmoid(gates[:, 2 * hidden:3 * hidden])
        g = np.tanh(gates[:, 3 * hidden:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        live = (t < lens)[:, None]  # rows past their length keep their state; Y is 0 there
        c = np.where(live, c_new, c)
        h = np.where(live, h_new, h)
        y[t, 0] = np.where(live, h_new, 0.0)
    return [y, h[None], c[None]]


def _slice(ins: List[np.ndarray]) -> np.ndarray:
    data, starts, ends = ins[0], ins[1], ins[2]
    axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
    steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), np.int64)
    idx = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        idx[int(a)] = slice(int(s), int(e), int(st))
    return data[tuple(idx)]


def _gemm(ins: List[np.ndarray], attrs: Dict[str, object]) -> np.ndarray:
    a, b = ins[0], ins[1]
    if attrs.get("transA", 0):
        a = a.T
    if attrs.get("transB", 0):
        b = b.T
    y = float(attrs.get("alpha", 1.0)) * (a.astype(np.float64) @ b.astype(np.float64))
    if len(ins) > 2 and ins[2] is not None:
        y = y + float(attrs.get("beta", 1.0)) * ins[2]
    return y


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _axes(ins: List[np.ndarray], attrs: Dict[str, object]) -> Sequence[int]:
    if len(ins) > 1 and ins[1] is not None:
        return [int(a) for a in ins[1]]
    return list(attrs.get("axes", []))


def _reduce(fn, ins: List[np.ndarray], attrs: Dict[str, object]) -> np.ndarray:
    # opset 13+: ReduceSum takes axes as an input; ReduceMax (< 18) as an attribute.
    axes = _axes(ins, attrs)
    keep = bool(attrs.get("keepdims", 1))
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return ins[0]
        axes = list(range(ins[0].ndim))
    return fn(ins[0], axis=tuple(axes), keepdims=keep)


def _clip(ins: List[np.ndarray]) -> np.ndarray:
    x = ins[0]
    if len(ins) > 1 and ins[1] is not None:
        x = np.maximum(x, ins[1])
    if len(ins) > 2 and ins[2] is not None:
        x = np.minimum(x, ins[2])
    return x


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return np.trunc(a / b).astype(np.result_type(a, b))
    return a / b


def _nary(fn, ins: List[np.ndarray]) -> np.ndarray:
    out = ins[0]
    for x in ins[1:]:
        out = fn(out, x)
    return out


def _expand(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    # ONNX Expand broadcasts both ways (a 1 in shape keeps x's dimension).
    return x * np.ones([int(d) for d in shape], dtype=x.dtype)


def _constant_of_shape(ins: List[np.ndarray], attrs: Dict[str, object]) -> np.ndarray:
    v = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
    return np.full([int(d) for d in ins[0]], v.reshape(-1)[0], dtype=v.dtype)


_Op = Callable[[onnx.NodeProto, List[np.ndarray], Dict[str, object]], List[np.ndarray]]
_OPS: Dict[str, _Op] = {
    "Constant": lambda n, i, a: [numpy_helper.to_array(a["value"])],
    "Identity": lambda n, i, a: [i[0]],
    "Cast": lambda n, i, a: [i[0].astype(_ONNX_TO_NP[int(a["to"])])],
    "Gather": lambda n, i, a: [np.take(i[0], i[1], axis=int(a.get("axis", 0)))],
    "Transpose": lambda n, i, a: [np.transpose(i[0], a.get("perm"))],
    "Slice": lambda n, i, a: [_slice(i)],
    "Squeeze": lambda n, i, a: [np.squeeze(i[0], axis=tuple(_axes(i, a))) if _axes(i, a)
                                else np.squeeze(i[0])],
    "Unsqueeze": lambda n, i, a: [np.expand_dims(i[0], axis=tuple(_axes(i, a)))],
    "Concat": lambda n, i, a: [np.concatenate(i, axis=int(a["axis"]))],
    "Gemm": lambda n, i, a: [_gemm(i, a)],
    "MatMul": lambda n, i, a: [i[0].astype(np.float64) @ i[1].astype(np.float64)],
    "Add": lambda n, i, a: [i[0] + i[1]],
    "Softmax": lambda n, i, a: [_softmax(i[0], int(a.get("axis", -1)))],
    "Shape": lambda n, i, a: [np.array(i[0].shape, dtype=np.int64)],
    "Reshape": lambda n, i, a: [np.reshape(i[0], [d if d != 0 else i[0].shape[k]
                                                  for k, d in enumerate(i[1].tolist())])],
    "LSTM": _lstm,
    "Sub": lambda n, i, a: [i[0] - i[1]],
    "Mul": lambda n, i, a: [i[0] * i[1]],
    "Div": lambda n, i, a: [_div(i[0], i[1])],
    "Relu": lambda n, i, a: [np.maximum(i[0], 0)],
    "Max": lambda n, i, a: [_nary(np.maximum, i)],
    "Min": lambda n, i, a: [_nary(np.minimum, i)],
    "ReduceSum": lambda n, i, a: [_reduce(np.sum, i, a)],
    "ReduceMax": lambda n, i, a: [_reduce(np.max, i, a)],
    "Range": lambda n, i, a: [np.arange(i[0].item(), i[1].item(), i[2].item()).astype(i[0].dtype)],
    "Less": lambda n, i, a: [i[0] < i[1]],
    "Equal": lambda n, i, a: [i[0] == i[1]],
    "Where": lambda n, i, a: [np.where(i[0], i[1], i[2])],
    "Tanh": lambda n, i, a: [np.tanh(i[0])],
    "Sqrt": lambda n, i, a: [np.sqrt(i[0])],
    "Log": lambda n, i, a: [np.log(i[0])],
    "Neg": lambda n, i, a: [np.negative(i[0])],
    "Sigmoid": lambda n, i, a: [_sigmoid(i[0])],
    "Clip": lambda n, i, a: [_clip(i)],
    "Expand": lambda n, i, a: [_expand(i[0], i[1])],
    "ConstantOfShape": lambda n, i, a: [_constant_of_shape(i, a)],
}


def supported_ops() -> List[str]:
    return sorted(_OPS)


def run(model: onnx.ModelProto, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Evaluates the graph on feeds and returns every graph output by name."""
    env: Dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in env:
            continue
        if inp.name not in feeds:
            raise KeyError(f"missing feed {inp.name!r}")
        env[inp.name] = np.asarray(feeds[inp.name])
    for node in model.graph.node:
        op = _OPS.get(node.op_type)
        if op is None or node.domain not in ("", "ai.onnx"):
            raise NotImplementedError(f"op {node.domain}:{node.op_type} ({node.name})")
        ins = [env[name] if name else None for name in node.input]
        outs = op(node, ins, _attrs(node))
        for name, val in zip(node.output, outs):
            if name:
                env[name] = val
    return {o.name: env[o.name] for o in model.graph.output}
