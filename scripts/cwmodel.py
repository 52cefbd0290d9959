"""The callwatch LSTM classifier (PyTorch side).

Embedding(vocab, E, padding_idx=0) -> unidirectional LSTM(E, H, L layers,
batch_first) -> Linear(H, 2) on the last layer's final hidden state at each
row's last real token -> softmax over (normal, phishing).

The forward pass packs the right-padded batch, so padding never reaches the
recurrence: this is the reference semantics that the ONNX export (with
sequence_lens wired into every LSTM op, see export.py) must reproduce.

v2 (CallWatchPooled, ModelConfig.arch == "pooled") adds a pooled running
state p and a family head; see its docstring. Both kinds load through
load_checkpoint.

Works with torch 1.13 (Debian) and torch 2.x.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD_ID = 0
LABELS = ("normal", "phishing")


@dataclass(frozen=True)
class ModelConfig:
    vocab: int
    embed: int = 64
    hidden: int = 128
    layers: int = 1
    # Training-only dropout on embeddings and on the head's input; a no-op in
    # eval mode, so it never changes the exported graph.
    dropout: float = 0.0
    # "last": v1, head on the top layer's h at the last real token (CallWatchLSTM).
    # "pooled": v2, head on pooled running state + family head (CallWatchPooled).
    arch: str = "last"
    # v2 only: family names of the family head (sorted; both classes), hidden
    # units of the heads' shared ReLU layer (0: linear heads), and which pooled
    # features the head reads (a subset of FEATURES: "mean_h", "max_h", "last_h",
    # "mean_e", "max_e", "att_h", "slog_h", "slog_e", "avg_h", "avg_e", "rms_h", "rms_e"; see pool_max_h for which
    # accumulators p carries).
    families: Tuple[str, ...] = ()
    head_hidden: int = 0
    features: Tuple[str, ...] = ("mean_h", "max_h", "last_h", "mean_e")
    # Training-only: drop each feature group whole with this probability.
    group_dropout: float = 0.0
    # v2 only: what the pooled sums are divided by to make mean_h / mean_e:
    # "mean" the token count n, "sqrt" sqrt(n). sqrt keeps a few strong tokens
    # from being diluted in a long call, as the length-normalized bag of n-grams
    # that transfers best to real calls does (scripts/README, round 6).
    pool_norm: str = "mean"
    # v2, pool_norm "sqrt" only: past this many tokens the divisor grows as n
    # (n / sqrt(cap)) instead of sqrt(n), so a long call's features stay in
    # the range training saw (windows of at most --max-len tokens) instead of
    # growing without bound: real normal calls run to thousands of tokens and
    # a feature that grows with length ranks them above short scams
    # (scripts/README, round 7). 0: no cap.
    pool_cap: int = 0
    # v2 only: whether p carries the max_h accumulator. Models up to v0.8.0
    # carried it even when the head did not read it (True, the default of
    # checkpoints and exports that do not say); train.py sets it to whether
    # the head reads max_h, which saves H floats of streamed state.
    pool_max_h: bool = True
    # v2 only: rms_h / rms_e normalize each of this many equal column blocks of a sum on its
    # own. 1 for a trained model; merge_ensemble sets K, so that each member's block is
    # normalized as that member normalized it and the merged graph still equals the members'
    # mean logit.
    norm_groups: int = 1

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["families"] = list(self.families)
        d["features"] = list(self.features)
        return d

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "ModelConfig":
        return ModelConfig(vocab=int(d["vocab"]), embed=int(d["embed"]),
                           hidden=int(d["hidden"]), layers=int(d["layers"]),
                           dropout=float(d.get("dropout", 0.0)),
                           arch=str(d.get("arch", "last")),
                           families=tuple(d.get("families", ())),
                           head_hidden=int(d.get("head_hidden", 0)),
                           features=tuple(d.get("features", ("mean_h", "max_h", "last_h", "mean_e"))),
                           group_dropout=float(d.get("group_dropout", 0.0)),
                           pool_norm=str(d.get("pool_norm", "mean")),
                           pool_cap=int(d.get("pool_cap", 0)),
                           pool_max_h=bool(d.get("pool_max_h", True)),
                           norm_groups=int(d.get("norm_groups", 1)))


class CallWatchLSTM(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab, cfg.embed, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(cfg.embed, cfg.hidden, num_layers=cfg.layers, batch_first=True)
        self.head = nn.Linear(cfg.hidden, 2)
        self.drop = nn.Dropout(cfg.dropout)

    def zero_state(self, batch: int, device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
        shape = (self.cfg.layers, batch, self.cfg.hidden)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def encode(self, input_ids: Tensor, lengths: Tensor, h0: Optional[Tensor] = None,
               c0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Returns (logits [B,2], hn, cn [L,B,H]) at each row's last real token."""
        if h0 is None or c0 is None:
            h0, c0 = self.zero_state(input_ids.shape[0], input_ids.device)
        x = self.drop(self.embed(input_ids))
        # pack_padded_sequence wants lengths on the CPU; enforce_sorted=False
        # sorts internally and un-sorts hn/cn back to the caller's row order.
        packed = pack_padded_sequence(x, lengths.to("cpu", torch.int64), batch_first=True,
                                      enforce_sorted=False)
        _, (hn, cn) = self.lstm(packed, (h0, c0))
        return self.head(self.drop(hn[-1])), hn, cn

    def logits_at_last(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """Logits [B,2] at each row's last real token, from zero state.

        Same values as encode(...)[0], but runs the plain LSTM over the padded
        batch and gathers the top layer's output at lengths-1: right padding
        comes after that position, so it cannot affect it. Used for training
        because on CPU the backward pass through packed sequences is an order
        of magnitude slower (it grows quadratically with the sequence length
        in torch 1.13), while this costs only the padding, which length
        bucketing keeps small.
        """
        x = self.drop(self.embed(input_ids))
        out, _ = self.lstm(x)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        last = out[rows, lengths.to(out.device) - 1]
        return self.head(self.drop(last))

    def forward(self, input_ids: Tensor, lengths: Tensor, h0: Optional[Tensor] = None,
                c0: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        logits, hn, cn = self.encode(input_ids, lengths, h0, c0)
        return torch.softmax(logits, dim=-1), hn, cn


class UnpackedForExport(nn.Module):
    """The same computation with a plain (unpacked) LSTM, for tracing.

    Tracing packed sequences emits data-dependent sorting ops; instead we
    export this and let export.py wire `lengths` into each ONNX LSTM op's
    sequence_lens input, which gives exactly the packed semantics. `lengths`
    is accepted (and ignored) here so that the traced signature matches.
    """

    def __init__(self, model: CallWatchLSTM) -> None:
        super().__init__()
        self.embed = model.embed
        self.lstm = model.lstm
        self.head = model.head

    def logits_at_last(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """Logits [B,2] at each row's last real token, from zero state.

        Same values as encode(...)[0], but runs the plain LSTM over the padded
        batch and gathers the top layer's output at lengths-1: right padding
        comes after that position, so it cannot affect it. Used for training
        because on CPU the backward pass through packed sequences is an order
        of magnitude slower (it grows quadratically with the sequence length
        in torch 1.13), while this costs only the padding, which length
        bucketing keeps small.
        """
        x = self.drop(self.embed(input_ids))
        out, _ = self.lstm(x)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        last = out[rows, lengths.to(out.device) - 1]
        return self.head(self.drop(last))

    def forward(self, input_ids: Tensor, lengths: Tensor, h0: Tensor,
                c0: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        x = self.embed(input_ids)
        _, (hn, cn) = self.lstm(x, (h0, c0))
        probs = torch.softmax(self.head(hn[-1]), dim=-1)
        return probs, hn, cn


FEATURES = ("mean_h", "max_h", "last_h", "mean_e", "max_e", "att_h", "slog_h", "slog_e", "avg_h", "avg_e",
            "rms_h", "rms_e")
E_FEATURES = ("mean_e", "max_e", "slog_e", "avg_e", "rms_e")  # features read from the embedding sums (E wide)
POOL_NORMS = ("mean", "sqrt", "pow0.625", "pow0.75")  # the pooled sums divided by n, sqrt(n), n^0.625 or n^0.75
DEFAULT_FAMILIES = ("normal", "phishing")


RMS_EPS = 1e-6


def _rms(s: Tensor, groups: int, width: int) -> Tensor:
    """s [B, width] divided by its root mean square, in each of `groups` equal column blocks: a
    direction with no length in it, as the L2-normalized TF-IDF vector of the linear bar is
    (Mul, ReduceSum, Add, Sqrt, Div and Reshape, ops both backends run; the sizes come from the
    config, not the tensor, so the graph holds no Reciprocal of a traced shape). A zero sum
    stays zero."""
    if groups == 1:
        return s / torch.sqrt((s * s).sum(1, keepdim=True) * (1.0 / width) + RMS_EPS)
    g = s.reshape(-1, groups, width // groups)
    return (g / torch.sqrt((g * g).sum(2, keepdim=True) * (float(groups) / width) + RMS_EPS)).reshape(-1, width)


def _slog(s: Tensor) -> Tensor:
    """sign(s) * log(1 + |s|), elementwise, from Relu/Log/Sub (ops both backends run): a
    saturating read of a running sum, as sublinear tf is of a term count."""
    return torch.log(1 + torch.relu(s)) - torch.log(1 + torch.relu(-s))


class CallWatchPooled(nn.Module):
    """v2: the head reads pooled summaries of the whole call, carried as state.

    Embedding -> unidirectional LSTM (as v1) -> a running pooled state p
    [B, P], P = 2H + E + 1, laid out as

        [ sum_t h_t (H) | max(0, max_t h_t) (H) | sum_t e_t (E) | n (1) ]

    (with cfg.pool_max_h False the max_h part is left out: P = H + E + 1)
    over the real tokens seen so far (h_t: top layer's output, e_t: the
    token's embedding, n: token count). Every part is an accumulator that
    starts at zero, so p0 = 0 is a fresh call and scoring a call in segments
    (feeding pn back as p0, hn/cn as h0/c0) equals scoring it whole up to
    float rounding. The max part is floored at 0 (max over relu(h_t)), which
    makes 0 its correct initial value. Padded positions are masked explicitly
    with arange(seq) < lengths.

    With the feature max_e, one more accumulator max(0, max_t e_t) (E) sits
    between sum_e and n (P grows by E); with att_h, two more come before n:
    sum_t g_t h_t (H) and sum_t g_t (1), g_t = sigmoid(u . h_t + b) a learned
    gate (P grows by H + 1). Without them the layout above is unchanged, so
    every earlier model keeps its state.

    The heads read the features named in cfg.features, from
        mean_h = sum_h / max(n, 1), max_h, last_h = top layer's h at the last
        real token (= hn[-1]), mean_e = sum_e / max(n, 1), max_e,
        slog_h = sign(sum_h) log(1 + |sum_h|), slog_e likewise of sum_e: the
        sums read with saturation, the way sublinear tf reads a term count
        (no state of their own; their scale grows only with log n),
        rms_h = sum_h / rms(sum_h) and rms_e likewise: the sums' directions,
        with no length in them at all (a short call reads as strongly as a
        long one, as in the linear bar's L2-normalized TF-IDF; no state of
        their own),
        avg_h = sum_h / max(n, 1) and avg_e likewise, whatever pool_norm is:
        with pool_norm "sqrt" the head can read a sum both ways, grown with
        the call (mean_*) and not (avg_*), and learn for itself how much
        length should count (no state of their own),
        att_h = sum_t g_t h_t / max(sum_t g_t, 1): the mean of h over the
        tokens the gate picks, whatever the call's length (a few strong
        tokens are not diluted by a long call, and a long call does not grow
        its features), and their gated sum while the gate has picked less
        than one token's worth
    (with pool_norm "sqrt" the means divide by sqrt(n) instead, and by
    n / sqrt(pool_cap) past pool_cap tokens), through an optional shared ReLU layer, into probs (normal, phishing) and
    family_probs (softmax over cfg.families, the corpus families of both
    classes in sorted order).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.arch != "pooled":
            raise ValueError("CallWatchPooled needs cfg.arch == 'pooled'")
        if cfg.pool_norm not in POOL_NORMS:
            raise ValueError(f"unknown pool_norm {cfg.pool_norm!r}, want one of {POOL_NORMS}")
        if "max_h" in cfg.features and not cfg.pool_max_h:
            raise ValueError("feature max_h needs pool_max_h (its accumulator in p)")
        if cfg.pool_cap < 0 or (cfg.pool_cap > 0 and cfg.pool_norm != "sqrt"):
            raise ValueError(f"pool_cap {cfg.pool_cap} needs pool_norm 'sqrt' and a positive value")
        for f in cfg.features:
            if f not in FEATURES:
                raise ValueError(f"unknown feature {f!r}, want some of {FEATURES}")
        self.cfg = cfg
        self.families = tuple(cfg.families) or DEFAULT_FAMILIES
        H, E = cfg.hidden, cfg.embed
        self.embed = nn.Embedding(cfg.vocab, E, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(E, H, num_layers=cfg.layers, batch_first=True)
        self.sizes = {"mean_h": H, "max_h": H, "last_h": H, "mean_e": E, "max_e": E, "att_h": H,
                      "slog_h": H, "slog_e": E, "avg_h": H, "avg_e": E, "rms_h": H, "rms_e": E}
        if cfg.norm_groups < 1 or H % cfg.norm_groups or E % cfg.norm_groups:
            raise ValueError(f"norm_groups {cfg.norm_groups} must divide hidden {H} and embed {E}")
        if "att_h" in cfg.features:
            # the gate's weights as plain parameters (Mul + ReduceSum in the graph, not a
            # MatMul with a renamed transposed initializer) so onnx2torch finds them by name
            self.att_u = nn.Parameter(torch.zeros(H))
            self.att_b = nn.Parameter(torch.zeros(1))
        fdim = sum(self.sizes[f] for f in cfg.features)
        self.hid = nn.Linear(fdim, cfg.head_hidden) if cfg.head_hidden > 0 else None
        width = cfg.head_hidden if cfg.head_hidden > 0 else fdim
        self.head = nn.Linear(width, 2)
        self.fam_head = nn.Linear(width, len(self.families))
        self.drop = nn.Dropout(cfg.dropout)

    @property
    def layout(self) -> Dict[str, Tuple[int, int]]:
        """[start, end) of each accumulator in p, in order. max_e's accumulator exists only
        when the head reads it, and max_h's only with cfg.pool_max_h, so every earlier model
        keeps its layout."""
        H, E = self.cfg.hidden, self.cfg.embed
        sizes = [("sum_h", H)] + ([("max_h", H)] if self.cfg.pool_max_h else []) + [("sum_e", E)]
        if self.has_max_e:
            sizes.append(("max_e", E))
        if "att_h" in self.cfg.features:
            sizes += [("att_sum", H), ("att_w", 1)]
        sizes.append(("n", 1))
        out, k = {}, 0
        for name, size in sizes:
            out[name] = (k, k + size)
            k += size
        return out

    def _part(self, p: Tensor):
        """name -> that accumulator's columns of a pooled state p."""
        L = self.layout
        return lambda name: p[:, L[name][0]:L[name][1]]

    @property
    def pooled_size(self) -> int:
        return self.layout["n"][1]

    @property
    def has_max_e(self) -> bool:
        return "max_e" in self.cfg.features

    def zero_state(self, batch: int, device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor, Tensor]:
        shape = (self.cfg.layers, batch, self.cfg.hidden)
        return (torch.zeros(shape, device=device), torch.zeros(shape, device=device),
                torch.zeros(batch, self.pooled_size, device=device))

    def accumulate(self, e: Tensor, y: Tensor, lengths: Tensor, p0: Tensor) -> Tensor:
        """pn from p0 and one segment: e [B,S,E] embeddings, y [B,S,H] top-layer outputs
        (any values at padded positions), lengths [B]."""
        part = self._part(p0)
        seq = e.shape[1]
        mask = (torch.arange(seq, device=e.device).unsqueeze(0) < lengths.unsqueeze(1)).to(e.dtype)
        mask = mask.unsqueeze(2)  # [B,S,1]
        ym = y * mask
        L = self.layout
        parts = [part("sum_h") + ym.sum(1)]
        if "max_h" in L:
            parts.append(torch.max(part("max_h"), (torch.relu(y) * mask).max(1)[0]))
        parts.append(part("sum_e") + (e * mask).sum(1))
        if "max_e" in L:
            parts.append(torch.max(part("max_e"), (torch.relu(e) * mask).max(1)[0]))
        if "att_sum" in L:
            g = torch.sigmoid((y * self.att_u).sum(2, keepdim=True) + self.att_b) * mask  # [B,S,1]
            parts.append(part("att_sum") + (g * y).sum(1))
            parts.append(part("att_w") + g.sum(1))
        parts.append(p0[:, -1:] + lengths.unsqueeze(1).to(e.dtype))  # n stays the last column
        return torch.cat(parts, 1)

    def head_logits(self, pn: Tensor, h_last: Tensor) -> Tuple[Tensor, Tensor]:
        """(binary logits [B,2], family logits [B,F]) from the pooled state and the last h."""
        part = self._part(pn)
        n = torch.clamp(pn[:, -1:], min=1.0)
        n_tokens = n
        if self.cfg.pool_norm in ("pow0.625", "pow0.75"):
            # n^0.75 = r sqrt(r) and n^0.625 = r sqrt(sqrt(r)), r = sqrt(n), from Sqrt and Mul
            # (ops both backends run): between sqrt(n), whose features grow with the call, and
            # n, whose features do not
            r = torch.sqrt(n)
            q = torch.sqrt(r)
            n = r * (q if self.cfg.pool_norm == "pow0.75" else torch.sqrt(q))
        elif self.cfg.pool_norm == "sqrt":
            if self.cfg.pool_cap > 0:
                n = torch.max(torch.sqrt(n), n / math.sqrt(self.cfg.pool_cap))
            else:
                n = torch.sqrt(n)
        parts = {"mean_h": lambda: part("sum_h") / n, "max_h": lambda: part("max_h"),
                 "last_h": lambda: h_last, "mean_e": lambda: part("sum_e") / n,
                 "max_e": lambda: part("max_e"),
                 "att_h": lambda: part("att_sum") / torch.clamp(part("att_w"), min=1.0),
                 "slog_h": lambda: _slog(part("sum_h")), "slog_e": lambda: _slog(part("sum_e")),
                 "avg_h": lambda: part("sum_h") / n_tokens, "avg_e": lambda: part("sum_e") / n_tokens,
                 "rms_h": lambda: _rms(part("sum_h"), self.cfg.norm_groups, self.cfg.hidden),
                 "rms_e": lambda: _rms(part("sum_e"), self.cfg.norm_groups, self.cfg.embed)}
        feats: List[Tensor] = [parts[f]() for f in self.cfg.features]
        if self.training and self.cfg.group_dropout > 0:
            keep = 1.0 - self.cfg.group_dropout
            feats = [f * (torch.rand(f.shape[0], 1, device=f.device) < keep).to(f.dtype) / keep
                     for f in feats]
        z = self.drop(torch.cat(feats, 1))
        if self.hid is not None:
            z = self.drop(torch.relu(self.hid(z)))
        return self.head(z), self.fam_head(z)

    def train_logits(self, input_ids: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """Logits from zero state with a plain (unpacked) LSTM run over the padded batch: right
        padding comes after every real position, so it cannot reach them, and the mask keeps it
        out of p. Same values as encode(); much faster to train on CPU (see logits_at_last)."""
        e = self.drop(self.embed(input_ids))
        y, _ = self.lstm(e)
        b = input_ids.shape[0]
        lengths = lengths.to(y.device)
        p0 = torch.zeros(b, self.pooled_size, device=y.device)
        pn = self.accumulate(e, y, lengths, p0)
        last = y[torch.arange(b, device=y.device), lengths - 1]
        return self.head_logits(pn, last)

    def logits_at_last(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        return self.train_logits(input_ids, lengths)[0]

    def encode(self, input_ids: Tensor, lengths: Tensor, h0: Optional[Tensor] = None,
               c0: Optional[Tensor] = None, p0: Optional[Tensor] = None):
        """(logits, family logits, hn, cn, pn), packed reference semantics."""
        b = input_ids.shape[0]
        z = self.zero_state(b, input_ids.device)
        h0 = z[0] if h0 is None else h0
        c0 = z[1] if c0 is None else c0
        p0 = z[2] if p0 is None else p0
        e = self.drop(self.embed(input_ids))
        packed = pack_padded_sequence(e, lengths.to("cpu", torch.int64), batch_first=True,
                                      enforce_sorted=False)
        out, (hn, cn) = self.lstm(packed, (h0, c0))
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
        pn = self.accumulate(e, y, lengths.to(e.device), p0)
        logits, fam = self.head_logits(pn, hn[-1])
        return logits, fam, hn, cn, pn

    def forward(self, input_ids: Tensor, lengths: Tensor, h0: Optional[Tensor] = None,
                c0: Optional[Tensor] = None, p0: Optional[Tensor] = None):
        """(probs [B,2], hn, cn [L,B,H], pn [B,P], family_probs [B,F])."""
        logits, fam, hn, cn, pn = self.encode(input_ids, lengths, h0, c0, p0)
        return torch.softmax(logits, -1), hn, cn, pn, torch.softmax(fam, -1)


class PooledForExport(nn.Module):
    """CallWatchPooled with a plain LSTM, for tracing (see UnpackedForExport): export.py wires
    lengths into each LSTM's sequence_lens, so hn/cn (and h_last = hn[-1]) are at each row's
    last real token; the pooled sums are masked explicitly by arange(seq) < lengths."""

    def __init__(self, model: CallWatchPooled) -> None:
        super().__init__()
        self.m = model

    def forward(self, input_ids: Tensor, lengths: Tensor, h0: Tensor, c0: Tensor, p0: Tensor):
        m = self.m
        e = m.embed(input_ids)
        y, (hn, cn) = m.lstm(e, (h0, c0))
        pn = m.accumulate(e, y, lengths, p0)
        logits, fam = m.head_logits(pn, hn[-1])
        return torch.softmax(logits, -1), hn, cn, pn, torch.softmax(fam, -1)


def merge_ensemble(members: Sequence["CallWatchPooled"]) -> "CallWatchPooled":
    """One CallWatchPooled that computes the mean logit of several (an ensemble in one graph).

    Independent LSTMs side by side are one LSTM whose hidden units are their union and whose
    weights are block-diagonal: member k's units see only member k's embedding columns and
    hidden units. The pooled sums concatenate likewise (n is shared), and a linear head over
    the concatenated features with each member's weights divided by K is the mean of their
    logits, for the binary and the family head alike. So the merged model's probs equal the
    softmax of the members' mean logits exactly, and streaming it equals scoring it whole as
    for any other model: the ONNX contract does not change, only H and E grow. It needs
    linear heads (head_hidden 0) and the same layers, features, families, pool_norm and
    pool_cap in every member."""
    if not members:
        raise ValueError("merge_ensemble: no members")
    c0 = members[0].cfg
    for m in members:
        c = m.cfg
        if c.arch != "pooled" or c.head_hidden != 0:
            raise ValueError("merge_ensemble: members must be pooled models with linear heads")
        if "att_h" in c.features:
            raise ValueError("merge_ensemble: att_h's gate is one per model; members cannot share it")
        for k in ("layers", "features", "families", "pool_norm", "pool_cap", "vocab", "norm_groups"):
            if getattr(c, k) != getattr(c0, k):
                raise ValueError(f"merge_ensemble: members differ in {k}: "
                                 f"{getattr(c, k)!r} vs {getattr(c0, k)!r}")
    K = len(members)
    Hs = [m.cfg.hidden for m in members]
    Es = [m.cfg.embed for m in members]
    H, E = sum(Hs), sum(Es)
    groups = 1
    if any(f in c0.features for f in ("rms_h", "rms_e")):
        # each member's block of a sum is normalized on its own: equal blocks, one per group
        if c0.norm_groups != 1 or len(set(Hs)) != 1 or len(set(Es)) != 1:
            raise ValueError("merge_ensemble: rms_h / rms_e need members of one size, not merged before")
        groups = K
    cfg = ModelConfig(vocab=c0.vocab, embed=E, hidden=H, layers=c0.layers, arch="pooled",
                      families=c0.families, features=c0.features, pool_norm=c0.pool_norm,
                      pool_cap=c0.pool_cap, pool_max_h=any(m.cfg.pool_max_h for m in members),
                      norm_groups=groups)
    out = CallWatchPooled(cfg)
    hoff = [sum(Hs[:k]) for k in range(K)]
    eoff = [sum(Es[:k]) for k in range(K)]
    with torch.no_grad():
        for p in out.parameters():
            p.zero_()
        for k, m in enumerate(members):
            out.embed.weight[:, eoff[k]:eoff[k] + Es[k]] = m.embed.weight
            for layer in range(cfg.layers):
                # input of layer 0 is the embedding, of later layers the layer below's h
                ioff, isz = (eoff[k], Es[k]) if layer == 0 else (hoff[k], Hs[k])
                w_ih = getattr(m.lstm, f"weight_ih_l{layer}")
                w_hh = getattr(m.lstm, f"weight_hh_l{layer}")
                for g in range(4):  # gate blocks i, f, g, o
                    rows = slice(g * H + hoff[k], g * H + hoff[k] + Hs[k])
                    src = slice(g * Hs[k], (g + 1) * Hs[k])
                    getattr(out.lstm, f"weight_ih_l{layer}")[rows, ioff:ioff + isz] = w_ih[src]
                    getattr(out.lstm, f"weight_hh_l{layer}")[rows, hoff[k]:hoff[k] + Hs[k]] = w_hh[src]
                    for b in ("bias_ih", "bias_hh"):
                        getattr(out.lstm, f"{b}_l{layer}")[rows] = getattr(m.lstm, f"{b}_l{layer}")[src]
            # head columns: features in cfg order, each the members' parts side by side
            src_col, dst_col = 0, 0
            for f in cfg.features:
                size_k = m.sizes[f]
                off = eoff[k] if f in E_FEATURES else hoff[k]
                for head_out, head_in in ((out.head, m.head), (out.fam_head, m.fam_head)):
                    head_out.weight[:, dst_col + off:dst_col + off + size_k] = \
                        head_in.weight[:, src_col:src_col + size_k] / K
                src_col += size_k
                dst_col += out.sizes[f]
            out.head.bias += m.head.bias / K
            out.fam_head.bias += m.fam_head.bias / K
    out.eval()
    return out


class CharTiedEmbedding(nn.Module):
    """Training-time token embedding (train.py --char-embed): a token's vector is its own plus
    the mean of the vectors of the characters its piece spells, so tokens that share syllables
    share parameters. A token the corpus rarely shows, or an STT misspelling of a common word,
    then starts near the words it is spelled like, as it does for the character n-gram LR.
    It is a fixed function of the token id, so plain_state() folds it into one plain embedding
    table after training: the exported graph, the state and both backends do not change."""

    def __init__(self, base: nn.Embedding, pieces: Sequence[str], init_std: float = 1.0) -> None:
        super().__init__()
        chars: Dict[str, int] = {}
        rows: List[List[int]] = []
        for p in pieces:
            special = p.startswith("[") and p.endswith("]")
            text = "" if special else (p[2:] if p.startswith("##") else p)
            rows.append([chars.setdefault(ch, len(chars) + 1) for ch in text])  # 0: no character
        width = max(1, max(len(r) for r in rows))
        idx = torch.zeros(len(rows), width, dtype=torch.int64)
        for i, r in enumerate(rows):
            if r:
                idx[i, :len(r)] = torch.tensor(r, dtype=torch.int64)
        counts = (idx > 0).sum(1, keepdim=True).clamp(min=1).to(torch.float32)
        if base.weight.shape[0] != len(rows):
            raise ValueError(f"{len(rows)} pieces for an embedding of {base.weight.shape[0]} tokens")
        self.base = base
        self.chars = nn.Embedding(len(chars) + 1, base.weight.shape[1], padding_idx=0)
        with torch.no_grad():
            self.chars.weight.normal_(0.0, init_std)
            self.chars.weight[0].zero_()
        self.register_buffer("idx", idx)
        self.register_buffer("inv", 1.0 / counts)
        self.n_chars = len(chars)

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.base(input_ids) + self.chars(self.idx[input_ids]).sum(-2) * self.inv[input_ids]

    def table(self) -> Tensor:
        """[V, E]: every token's vector, as forward gives it (plain_state folds it into a plain
        model's embed.weight)."""
        return self.base.weight + self.chars(self.idx).sum(1) * self.inv


def plain_state(model: nn.Module) -> Dict[str, Tensor]:
    """model's state dict as a model with a plain embedding has it (CharTiedEmbedding folded)."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("embed.")}
    emb = model.embed
    sd["embed.weight"] = (emb.table() if isinstance(emb, CharTiedEmbedding) else emb.weight).detach().clone()
    return sd


def save_checkpoint(model: nn.Module, path: str, extra: Optional[Dict[str, Any]] = None) -> None:
    # plain_state: a model still training through a CharTiedEmbedding saves its folded table
    torch.save({"config": model.cfg.to_dict(), "state_dict": plain_state(model),
                "extra": extra or {}}, path)


def build_model(cfg: ModelConfig) -> Union["CallWatchLSTM", "CallWatchPooled"]:
    if cfg.arch == "pooled":
        return CallWatchPooled(cfg)
    if cfg.arch != "last":
        raise ValueError(f"unknown model arch {cfg.arch!r}")
    return CallWatchLSTM(cfg)


def load_checkpoint(path: str) -> Union["CallWatchLSTM", "CallWatchPooled"]:
    ck = torch.load(path, map_location="cpu")
    model = build_model(ModelConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model
