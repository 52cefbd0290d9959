"""The callwatch LSTM classifier (PyTorch side).

Embedding(vocab, E, padding_idx=0) -> unidirectional LSTM(E, H, L layers,
batch_first) -> Linear(H, 2) on the last layer's final hidden state at each
row's last real token -> softmax over (normal, phishing).

The forward pass packs the right-padded batch, so padding never reaches the
recurrence: this is the reference semantics that the ONNX export (with
sequence_lens wired into every LSTM op, see export.py) must reproduce.

Works with torch 1.13 (Debian) and torch 2.x.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

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

    def to_dict(self) -> Dict[str, int]:
        return asdict(self)

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "ModelConfig":
        return ModelConfig(vocab=int(d["vocab"]), embed=int(d["embed"]),
                           hidden=int(d["hidden"]), layers=int(d["layers"]),
                           dropout=float(d.get("dropout", 0.0)))


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


def save_checkpoint(model: CallWatchLSTM, path: str, extra: Optional[Dict[str, Any]] = None) -> None:
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict(),
                "extra": extra or {}}, path)


def load_checkpoint(path: str) -> CallWatchLSTM:
    ck = torch.load(path, map_location="cpu")
    model = CallWatchLSTM(ModelConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model
