#!/usr/bin/python3
"""Train the callwatch LSTM on tokenized calls and export the model.

Input: JSONL, one call per line, tokenized by `callwatch tokenize` (the Go
tokenizer, so training sees exactly the ids served):
  {"id": "...", "group": "...", "label": "phishing"|"normal", "ids": [int, ...]}
"group" ties variants of one base dialogue together; the train/validation
split never puts one group on both sides.

Training:
- calls are truncated to their first --max-len tokens (streaming starts at 0);
- each epoch every training call is seen whole and as --prefixes random
  prefixes (length uniform in [--min-prefix, len-1], same label), so a score
  taken part-way through a call is meaningful;
- --variants-per-epoch N: each epoch draws N random variants of every
  training base dialogue (fresh noise each epoch, same cost);
- --concat N: N long sequences per epoch made of whole training calls back
  to back (log-uniform 256..--concat-max tokens, same length law for both
  labels; a normal one is all normal calls, a phishing one holds at least one
  phishing call): real calls run to thousands of tokens and the LSTM must
  neither drift on long normal talk nor forget a scam (concat_examples);
- --word-dropout p: tokens replaced by [UNK] with probability p;
- class-balanced: the loss weights each class by N / (2 * N_class);
- AdamW (--weight-decay), gradient clipping, batches of similar lengths; the
  loss reads the top layer's output at each row's last real token
  (cwmodel.logits_at_last, equal to the packed forward and much faster to
  train on CPU);
- early stopping on validation loss or ROC-AUC (--select; full calls, one
  fixed prefix per call, --val-concat fixed long concatenations of
  validation calls), keeping the best epoch's weights.

Thresholds (chosen on validation, written to train_report.json):
- suspicious = max(0.5, t05), dangerous = max(suspicious, t01), where tXX is
  the lowest score threshold whose false-positive rate on normal validation
  calls and long validation concatenations (score >= t) is at most XX% (5%
  and 1%). Long normal sequences score higher than short ones, as real
  normal calls do, so they belong in the calibration pool. The 0.5 floor
  keeps every alerting call labelled phishing.

Outputs in --out: model.onnx (export.py), model.pt (checkpoint),
train_report.json. Deterministic for a seed on one machine (2 threads).

v2 (--arch pooled, cwmodel.CallWatchPooled; make-model.sh's recipe):
- the head reads pooled summaries of the call so far (--features: mean or
  max of the top layer's h, the last h, the mean embedding, a gated mean of h;
  the means over n or sqrt(n), --pool-norm), carried as the state p (only the
  accumulators the head reads), plus a family head (softmax over the corpus families of both
  classes, loss weight --family-weight);
- every epoch, --variants-per-epoch fresh variants of each training base
  dialogue, each whole (a random --max-len window when longer) and as --crops
  crops that start and end anywhere (length log-uniform from --crop-min);
  --concat long multi-call sequences (v1 label logic, then a random window);
  --mix recombined sequences of 2-4 crops of random calls (--mix-label latch:
  phishing if any part is; teacher: mixed ones learn the teacher's label only);
- token corruption: --word-dropout ([UNK]), --token-delete, --span-mask,
  --shuffle (segments of a sequence permuted); --group-dropout drops a whole
  feature group; --ema keeps a moving average of the weights;
- --merge A,B: no training; the members' checkpoints as one graph that scores
  their mean logit (cwmodel.merge_ensemble), then thresholds and export;
- --distill L: + L * BCE(student P(phishing), teacher P(phishing)) on every
  example, the teacher being lrteacher.LRTeacher fit on the training split
  (--teacher char: lrteacher.CharTeacher, character n-grams of the decoded ids),
  or, with --teacher-models, the mean logit of trained checkpoints;
- selection (best epoch, early stopping) on ROC-AUC over a synthetic pool:
  validation calls whole, crops, noisy crops, long concatenations;
- thresholds on a synthetic normal pool (threshold_pool): suspicious =
  max(0.5, lowest t flagging <= --suspicious-fpr of it), dangerous likewise
  at --dangerous-fpr. Real calls are never used for any of this.

  /usr/bin/python3 scripts/train.py --data calls.jsonl --vocab-size 8000 --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

# Debian's torch and numpy call a threaded OpenBLAS whose threads fight
# torch's own OpenMP threads: 3x slower training on 2 cores. Must be set
# before either loads the library; no effect on PyPI (MKL) torch.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cwmodel import (LABELS, POOL_NORMS, CallWatchLSTM, CharTiedEmbedding, ModelConfig, build_model,  # noqa: E402
                     load_checkpoint, merge_ensemble, plain_state, save_checkpoint)
from export import OPSET, export_onnx, op_list

LABEL_IDS = {name: i for i, name in enumerate(LABELS)}  # normal 0, phishing 1


class DataError(Exception):
    """The training data is malformed or unusable."""


@dataclass(frozen=True)
class Call:
    id: str
    group: str
    label: int
    ids: Tuple[int, ...]
    # Scenario family: the record's "family", else the group name less its "-NNN" suffix.
    family: str = ""


Example = Tuple[Sequence[int], int]  # (token ids, label)


def init_from(model: torch.nn.Module, path: str, log) -> None:
    """Loads every tensor of the checkpoint at path whose name and shape match (fine-tuning).
    The binary head and the LSTM must match; the family head is kept only when the family lists
    are the same (a user's own families start a fresh head)."""
    ck = torch.load(path, map_location="cpu")
    src = ck["state_dict"] if isinstance(ck, dict) and "state_dict" in ck else ck
    src_fams = tuple((ck.get("config") or {}).get("families", ())) if isinstance(ck, dict) else ()
    own = model.state_dict()
    loaded, skipped = [], []
    for k, v in src.items():
        if k in own and tuple(own[k].shape) == tuple(v.shape) and not (k.startswith("fam_head.") and src_fams != tuple(model.cfg.families)):
            own[k] = v
            loaded.append(k)
        else:
            skipped.append(k)
    for k in ("embed.weight", "lstm.weight_ih_l0"):
        if k not in loaded:
            raise DataError(f"--init-from {path}: {k} does not fit this model (vocabulary or sizes differ); "
                            "fine-tune with the bundle's own tokenizer and sizes")
    model.load_state_dict(own)
    log(f"init from {path}: {len(loaded)} tensors loaded" + (f", fresh: {', '.join(skipped)}" if skipped else ""))


def load_calls(path: str, vocab: int) -> List[Call]:
    calls: List[Call] = []
    seen = set()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                cid, group, label, ids = str(rec["id"]), str(rec["group"]), rec["label"], rec["ids"]
            except (ValueError, KeyError, TypeError) as e:
                raise DataError(f"{path}:{n}: {e}") from e
            if label not in LABEL_IDS:
                raise DataError(f"{path}:{n}: label {label!r}, want one of {list(LABEL_IDS)}")
            if not ids:
                continue  # an empty transcript carries no signal
            if min(ids) < 0 or max(ids) >= vocab:
                raise DataError(f"{path}:{n}: token id outside [0, {vocab})")
            if cid in seen:
                raise DataError(f"{path}:{n}: duplicate id {cid!r}")
            seen.add(cid)
            family = str(rec.get("family") or group.rsplit("-", 1)[0])
            calls.append(Call(cid, group, LABEL_IDS[label], tuple(int(i) for i in ids), family))
    if not calls:
        raise DataError(f"{path}: no calls")
    return calls


def split_by_group(calls: List[Call], val_frac: float, seed: int) -> Tuple[List[Call], List[Call]]:
    """Puts about val_frac of each class's groups (by majority label) in validation."""
    groups: Dict[str, List[Call]] = {}
    for c in calls:
        groups.setdefault(c.group, []).append(c)
    rng = random.Random(seed)
    val_groups = set()
    for label in (0, 1):
        names = sorted(g for g, cs in groups.items()
                       if round(sum(c.label for c in cs) / len(cs)) == label)
        rng.shuffle(names)
        total = sum(len(groups[g]) for g in names)
        taken = 0
        for g in names:
            if taken >= val_frac * total:
                break
            val_groups.add(g)
            taken += len(groups[g])
    train = [c for c in calls if c.group not in val_groups]
    val = [c for c in calls if c.group in val_groups]
    for name, part in (("train", train), ("validation", val)):
        if len({c.label for c in part}) < 2:
            raise DataError(f"{name} split lacks a class: need more groups of each label")
    return train, val


def prefix_len(rng: random.Random, n: int, min_prefix: int) -> Optional[int]:
    if n <= min_prefix:
        return None
    return rng.randint(min_prefix, n - 1)


def epoch_examples(calls: List[Call], rng: random.Random, max_len: int, prefixes: int,
                   min_prefix: int) -> List[Example]:
    ex: List[Example] = []
    for c in calls:
        ids = c.ids[:max_len]
        ex.append((ids, c.label))
        for _ in range(prefixes):
            p = prefix_len(rng, len(ids), min_prefix)
            if p is not None:
                ex.append((ids[:p], c.label))
    return ex


def by_group(calls: List[Call]) -> Dict[str, List[Call]]:
    groups: Dict[str, List[Call]] = {}
    for c in calls:
        groups.setdefault(c.group, []).append(c)
    for cs in groups.values():
        cs.sort(key=lambda c: c.id)
    return groups


def subsample_variants(calls: List[Call], per_group: int, rng: Optional[random.Random]) -> List[Call]:
    """At most per_group variants of each base dialogue: random ones (rng) or the first ones.

    With many variants per base on disk, each epoch sees a fresh draw of them: more noise
    variety at the cost of an epoch over few variants (gap 3, overfitting)."""
    if per_group <= 0:
        return list(calls)
    out: List[Call] = []
    for g, cs in sorted(by_group(calls).items()):
        if len(cs) <= per_group:
            out.extend(cs)
        elif rng is None:
            out.extend(cs[:per_group])
        else:
            out.extend(rng.sample(cs, per_group))
    return out


def concat_examples(calls: List[Call], rng: random.Random, n: int, min_len: int, max_len: int,
                    call_max: int, phish_share: float) -> List[Example]:
    """n long sequences made of whole calls back to back, half of each label (gap 1, length).

    Target length is log-uniform in [min_len, max_len]; calls are appended until it is reached and
    the last one is cut there (a call cut short, as in the corpus). Label logic:
    - normal: every part is a normal call (a long stretch of legitimate talk stays normal);
    - phishing: each part is phishing with probability phish_share, at least one of them, and a
      forced phishing part is never the cut last part of a multi-part sequence. A call in which a
      scam happened is a scam call even if small talk follows: the alert must hold (latch) once
      raised, which is also what the streaming policy does.
    Both labels draw lengths from the same distribution, so length is no signal.
    """
    normals = [c for c in calls if c.label == 0]
    phish = [c for c in calls if c.label == 1]
    out: List[Example] = []
    for i in range(n):
        label = i % 2
        target = int(math.exp(rng.uniform(math.log(min_len), math.log(max_len))))
        parts: List[Call] = []
        total = 0
        while total < target:
            pool = phish if label == 1 and rng.random() < phish_share else normals
            c = rng.choice(pool)
            parts.append(c)
            total += min(len(c.ids), call_max)
        if label == 1 and not any(c.label == 1 for c in parts):
            k = rng.randrange(len(parts) - 1) if len(parts) > 1 else 0
            parts[k] = rng.choice(phish)
        ids: List[int] = []
        for c in parts:
            ids.extend(c.ids[:call_max])
        cut = max(target, sum(min(len(c.ids), call_max) for c in parts[:-1]) + 1)
        out.append((tuple(ids[:cut]), label))
    return out


def word_dropout(x: torch.Tensor, p: float, unk_id: int) -> torch.Tensor:
    """Replaces real tokens by [UNK] with probability p (padding stays): the model must not hang
    on any single word, as STT drops and mangles words everywhere (gap 2/3)."""
    if p <= 0:
        return x
    mask = (torch.rand(x.shape) < p) & (x != 0)
    return torch.where(mask, torch.full_like(x, unk_id), x)


def batches(ex: List[Example], batch: int, rng: Optional[random.Random]) -> List[List[Example]]:
    """Batches of similar lengths (less padding); shuffled when rng is given."""
    if rng is None:
        order = sorted(range(len(ex)), key=lambda i: len(ex[i][0]))
        return [[ex[i] for i in order[k:k + batch]] for k in range(0, len(order), batch)]
    idx = list(range(len(ex)))
    rng.shuffle(idx)
    out: List[List[Example]] = []
    chunk = batch * 32  # sort within chunks: similar lengths, still random
    for k in range(0, len(idx), chunk):
        part = sorted(idx[k:k + chunk], key=lambda i: len(ex[i][0]))
        out.extend([[ex[i] for i in part[j:j + batch]] for j in range(0, len(part), batch)])
    rng.shuffle(out)
    return out


def tensors(b: List[Example]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = max(len(ids) for ids, _ in b)
    x = torch.zeros(len(b), s, dtype=torch.int64)
    for i, (ids, _) in enumerate(b):
        x[i, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    lens = torch.tensor([len(ids) for ids, _ in b], dtype=torch.int64)
    y = torch.tensor([lab for _, lab in b], dtype=torch.int64)
    return x, lens, y


def predict(model: CallWatchLSTM, ex: List[Example], batch: int,
            weight: Optional[torch.Tensor] = None) -> Tuple[np.ndarray, float]:
    """P(phishing) per example (input order) and the mean cross-entropy."""
    model.eval()
    scores = np.zeros(len(ex))
    order = sorted(range(len(ex)), key=lambda i: len(ex[i][0]))
    loss_sum, weight_sum = 0.0, 0.0
    with torch.no_grad():
        for k in range(0, len(order), batch):
            ids = order[k:k + batch]
            x, lens, y = tensors([ex[i] for i in ids])
            logits = model.logits_at_last(x, lens)
            w = torch.ones(len(ids)) if weight is None else weight[y]
            loss_sum += float((F.cross_entropy(logits, y, reduction="none") * w).sum())
            weight_sum += float(w.sum())
            scores[ids] = torch.softmax(logits, -1)[:, 1].double().numpy()
    return scores, loss_sum / weight_sum


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sv = allv[order]
    i = 0
    while i < len(sv):
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def metrics_at(y: np.ndarray, s: np.ndarray, t: float) -> Dict[str, float]:
    pred = s >= t
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"threshold": t, "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "fpr": fp / (fp + tn) if fp + tn else 0.0,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def fpr_threshold(normal_scores: np.ndarray, max_fpr: float) -> float:
    """Lowest t with mean(normal_scores >= t) <= max_fpr."""
    desc = np.sort(normal_scores)[::-1]
    k = int(math.floor(max_fpr * len(desc) + 1e-9))  # normals allowed at or above t
    if k >= len(desc):
        return 0.0
    # Just above the (k+1)-th highest normal score, in float32 (what the model emits).
    return float(np.nextafter(np.float32(desc[k]), np.float32(np.inf)))


def choose_thresholds(y: np.ndarray, s: np.ndarray, susp_fpr: float,
                      dang_fpr: float) -> Dict[str, float]:
    normals = s[y == 0]
    susp = max(0.5, fpr_threshold(normals, susp_fpr))
    dang = max(susp, fpr_threshold(normals, dang_fpr))
    return {"suspicious": susp, "dangerous": dang}


def git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# v2 (--arch pooled): pooled running state + family head, crops that start and
# end anywhere, recombined calls, token-level regularization, distillation from
# the linear teacher, selection on a synthetic pool. See the module docstring's
# "v2" section.

@dataclass
class Ex2:
    ids: np.ndarray          # int64 token ids
    label: int               # 0/1, or -1: no hard label (teacher target only)
    family: int = -1         # family index, -1: none (recombined sequences)
    teacher: float = float("nan")


def log_uniform_int(rng: random.Random, lo: int, hi: int) -> int:
    if hi <= lo:
        return max(1, hi)
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def random_crop(rng: random.Random, ids: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """A window that starts and ends anywhere: length log-uniform in [lo, min(len, hi)]."""
    n = len(ids)
    if n <= lo:
        return ids
    k = log_uniform_int(rng, lo, min(n, hi))
    start = rng.randint(0, n - k)
    return ids[start:start + k]


def window(rng: random.Random, ids: np.ndarray, max_len: int) -> np.ndarray:
    """At most max_len tokens: a random window of a longer sequence."""
    if len(ids) <= max_len:
        return ids
    start = rng.randint(0, len(ids) - max_len)
    return ids[start:start + max_len]


def shuffle_segments(rng: random.Random, ids: np.ndarray, max_parts: int = 6) -> np.ndarray:
    """Cuts the sequence at random points into 2..max_parts segments and permutes them
    (real transcripts merge turns, and a label must not hang on word order across turns)."""
    n = len(ids)
    k = rng.randint(2, max_parts)
    if n < 2 * k:
        return ids
    cuts = sorted(rng.sample(range(1, n), k - 1))
    parts = np.split(ids, cuts)
    rng.shuffle(parts)
    return np.concatenate(parts)


def freq_drop_table(calls: List[Call], vocab_size: int, q: float) -> np.ndarray:
    """Per-token [UNK] probability q * (1 - idf(t) / max idf), idf(t) = log(N / df(t)) over the
    training calls: a token in every call is dropped with probability ~q, a rare one ~never.
    Frequent tokens then carry unreliable evidence, so the model leans on the specific ones, as
    IDF weighting makes a linear model do."""
    df = np.zeros(vocab_size, np.float64)
    for c in calls:
        u = np.unique(np.asarray(c.ids, np.int64))
        df[u[u < vocab_size]] += 1
    n = max(len(calls), 1)
    idf = np.log(n / np.maximum(df, 1.0))
    return (q * (1.0 - idf / max(idf.max(), 1e-9))).astype(np.float64)


def corrupt(nrng: np.random.RandomState, ids: np.ndarray, unk: int, p_unk: float, p_del: float,
            span_frac: float, p_tok: Optional[np.ndarray] = None) -> np.ndarray:
    """Token dropout ([UNK] with p_unk, plus p_tok[token] when given), token deletion (p_del)
    and span masking (spans of 1..8 tokens to [UNK] covering ~span_frac of the sequence)."""
    out = ids.copy()
    n = len(out)
    if p_tok is not None and n > 0:
        out[nrng.random_sample(n) < p_tok[np.minimum(out, len(p_tok) - 1)]] = unk
    if span_frac > 0 and n > 4:
        n_spans = nrng.binomial(n, span_frac / 4.5)
        for st, ln in zip(nrng.randint(0, n, n_spans), nrng.randint(1, 9, n_spans)):
            out[st:st + ln] = unk
    if p_unk > 0:
        out[nrng.random_sample(n) < p_unk] = unk
    if p_del > 0 and n > 8:
        keep = nrng.random_sample(n) >= p_del
        if keep.any():
            out = out[keep]
    return out


def mix_examples(rng: random.Random, calls: List[Call], n: int, lo: int, hi: int, max_len: int,
                 latch: bool) -> List[Ex2]:
    """n sequences of 2-4 random crops of random calls (labels mixed at random).
    latch: hard label phishing if any part is phishing (a call in which a scam happened is a
    scam call); otherwise only all-normal ones get a hard label, mixed ones learn the
    teacher's label alone."""
    out: List[Ex2] = []
    for _ in range(n):
        parts = [rng.choice(calls) for _ in range(rng.randint(2, 4))]
        ids = np.concatenate([random_crop(rng, np.asarray(c.ids, np.int64), lo, hi) for c in parts])
        ids = window(rng, ids, max_len)
        anyp = any(c.label == 1 for c in parts)
        label = 1 if anyp and latch else (0 if not anyp else -1)
        out.append(Ex2(ids, label))
    return out


def v2_epoch(a, rng: random.Random, nrng: np.random.RandomState, train: List[Call],
             fam_idx: Dict[str, int]) -> List[Ex2]:
    ex: List[Ex2] = []
    sel = subsample_variants(train, a.variants_per_epoch, rng)
    for c in sel:
        ids = np.asarray(c.ids, np.int64)
        f = fam_idx[c.family]
        ex.append(Ex2(window(rng, ids, a.max_len), c.label, f))
        for _ in range(a.crops):
            ex.append(Ex2(random_crop(rng, ids, a.crop_min, a.max_len), c.label, f))
        for _ in range(a.prefixes):
            p = prefix_len(rng, len(ids), a.min_prefix)
            if p is not None:
                ex.append(Ex2(window(rng, ids[:p], a.max_len), c.label, f))
    if a.concat > 0:
        for ids, lab in concat_examples(train, rng, a.concat, a.concat_min, a.concat_max, 1 << 30,
                                        a.concat_phish_share):
            ex.append(Ex2(window(rng, np.asarray(ids, np.int64), a.concat_window or a.max_len), lab))
    if a.mix > 0:
        ex += mix_examples(rng, train, a.mix, a.crop_min, a.max_len, a.max_len,
                           latch=(a.mix_label == "latch"))
    for e in ex:
        if a.shuffle > 0 and rng.random() < a.shuffle:
            e.ids = shuffle_segments(rng, e.ids)
        e.ids = corrupt(nrng, e.ids, a.unk_id, a.word_dropout, a.token_delete, a.span_mask,
                        getattr(a, "freq_table", None))
        if len(e.ids) == 0:
            e.ids = np.array([a.unk_id], np.int64)
    return ex


def v2_tensors(b: List[Ex2]):
    s = max(len(e.ids) for e in b)
    x = torch.zeros(len(b), s, dtype=torch.int64)
    for i, e in enumerate(b):
        x[i, :len(e.ids)] = torch.from_numpy(np.asarray(e.ids, np.int64))
    lens = torch.tensor([len(e.ids) for e in b], dtype=torch.int64)
    y = torch.tensor([e.label for e in b], dtype=torch.int64)
    fam = torch.tensor([e.family for e in b], dtype=torch.int64)
    t = torch.tensor([e.teacher for e in b], dtype=torch.float32)
    return x, lens, y, fam, t


def v2_batches(ex: List[Ex2], batch: int, rng: random.Random, max_tokens: int) -> List[List[Ex2]]:
    """Shuffled batches of similar lengths, at most batch rows and ~max_tokens padded tokens."""
    idx = list(range(len(ex)))
    rng.shuffle(idx)
    out: List[List[Ex2]] = []
    chunk = batch * 32
    for k in range(0, len(idx), chunk):
        part = sorted(idx[k:k + chunk], key=lambda i: len(ex[i].ids))
        cur: List[Ex2] = []
        for i in part:
            if cur and (len(cur) >= batch or (len(cur) + 1) * len(ex[i].ids) > max_tokens):
                out.append(cur)
                cur = []
            cur.append(ex[i])
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return out


def v2_predict(model, seqs: List[np.ndarray], batch_tokens: int = 32768) -> np.ndarray:
    """P(phishing) per sequence, zero state (one pass = the streamed score)."""
    model.eval()
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    scores = np.zeros(len(seqs))
    k = 0
    with torch.no_grad():
        while k < len(order):
            s = len(seqs[order[min(k + 63, len(order) - 1)]])
            n = max(1, min(64, batch_tokens // max(1, s)))
            idx = order[k:k + n]
            b = [Ex2(np.asarray(seqs[i], np.int64), 0) for i in idx]
            x, lens, _, _, _ = v2_tensors(b)
            logits = model.logits_at_last(x, lens)
            scores[idx] = torch.softmax(logits, -1)[:, 1].double().numpy()
            k += len(idx)
    return scores


class CheckpointTeacher:
    """An ensemble of trained models as the distillation teacher (--teacher-models): P(phishing)
    is the sigmoid of the mean of their logit differences. Distilling several seeds into one
    student is how an ensemble's lower seed variance gets into one graph."""

    def __init__(self, paths: List[str]) -> None:
        from cwmodel import load_checkpoint
        self.models = [load_checkpoint(p) for p in paths]
        self.params = {"kind": "ensemble of checkpoints (mean logit)", "models": paths}

    def predict(self, seqs: List[Any]) -> np.ndarray:
        seqs = [np.asarray(s, np.int64) for s in seqs]
        z = np.zeros(len(seqs))
        for m in self.models:
            m.eval()
            z += logit_diffs(m, seqs)
        return 1 / (1 + np.exp(-z / len(self.models)))


def logit_diffs(model, seqs: List[np.ndarray], batch_tokens: int = 32768) -> np.ndarray:
    """logit(phishing) - logit(normal) per sequence, zero state, batched by length."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = np.zeros(len(seqs))
    k = 0
    with torch.no_grad():
        while k < len(order):
            n = max(1, batch_tokens // max(1, len(seqs[order[min(len(order) - 1, k + 63)]])))
            idx = order[k:k + min(n, 256)]
            width = max(len(seqs[i]) for i in idx)
            x = torch.zeros(len(idx), width, dtype=torch.int64)
            for j, i in enumerate(idx):
                x[j, :len(seqs[i])] = torch.from_numpy(seqs[i])
            lens = torch.tensor([len(seqs[i]) for i in idx])
            lg = model.train_logits(x, lens)[0] if hasattr(model, "train_logits") else model.logits_at_last(x, lens)
            out[idx] = (lg[:, 1] - lg[:, 0]).double().numpy()
            k += len(idx)
    return out


def v2_val_pool(a, val: List[Call]) -> Dict[str, List[Tuple[np.ndarray, int]]]:
    """The synthetic selection pool (fixed for a seed): validation calls whole, one crop of
    each (starts and ends anywhere), long concatenations of validation calls (normal ones all
    normal; phishing ones hold a phishing call), and noisy crops (token dropout 0.2)."""
    rng = random.Random(a.seed + 2)
    nrng = np.random.RandomState(a.seed + 2)
    sel = subsample_variants(val, a.val_variants, None)
    pool: Dict[str, List[Tuple[np.ndarray, int]]] = {"calls": [], "crops": [], "long": [], "noisy": []}
    for c in sel:
        ids = np.asarray(c.ids, np.int64)
        pool["calls"].append((ids, c.label))
        crop = random_crop(rng, ids, a.crop_min, len(ids))
        pool["crops"].append((crop, c.label))
        pool["noisy"].append((corrupt(nrng, random_crop(rng, ids, a.crop_min, len(ids)), a.unk_id,
                                      0.2, 0.0, 0.0), c.label))
    if a.val_concat > 0:
        for ids, lab in concat_examples(val, random.Random(a.seed + 3), a.val_concat, a.concat_min,
                                        a.concat_max, 1 << 30, a.concat_phish_share):
            pool["long"].append((np.asarray(ids, np.int64), lab))
    return {k: v for k, v in pool.items() if v}


def v2_eval_pool(model, pool) -> Dict[str, Any]:
    res: Dict[str, Any] = {}
    ys, ss = [], []
    for name, items in pool.items():
        s = v2_predict(model, [ids for ids, _ in items])
        y = np.array([lab for _, lab in items])
        res[name] = roc_auc(y, s)
        ys.append(y)
        ss.append(s)
    res["all"] = roc_auc(np.concatenate(ys), np.concatenate(ss))
    res["_scores"] = (ys, ss)
    return res


def cached_teacher(work: str, tok: str, train: Sequence[Call], fit, log):
    """The character teacher of one training split, fit once: the members of an ensemble share
    their split and train at the same time, so the first to get the lock fits it (~20 s on
    the full corpus) and the others load it. The key covers the split's calls and the vocabulary."""
    import fcntl
    import pickle
    h = hashlib.sha256()
    with open(tok, "rb") as f:
        h.update(f.read())
    for c in sorted(train, key=lambda c: c.id):
        h.update(f"{c.id}:{c.label}:{len(c.ids)}\n".encode())
    path = os.path.join(work, f"char-teacher-{h.hexdigest()[:16]}.pkl")
    with open(path + ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if os.path.exists(path):
            with open(path, "rb") as f:
                log(f"teacher: loaded {path}")
                return pickle.load(f)
        t = fit()
        with open(path + ".tmp", "wb") as f:
            pickle.dump(t, f)
        os.replace(path + ".tmp", path)
        return t


def tokenizer_path(a, given: str) -> str:
    """given, else the tokenizer.json beside --data (where make-model.sh writes both)."""
    return given or os.path.join(os.path.dirname(os.path.abspath(a.data)), "tokenizer.json")


def family_weights(train: List[Call], fam_idx: Dict[str, int], power: float) -> torch.Tensor:
    """Per-family loss weights [F]: family f of a class with g_f base dialogues in the training
    split weighs g_f^-power, scaled so that each class keeps its total weight. power 0: every
    call alike (each family weighs as many bases as it has); 1: every family of a class alike,
    so adding a family of one kind does not thin out the others (--family-balance)."""
    groups: Dict[str, set] = {}
    label: Dict[str, int] = {}
    for c in train:
        groups.setdefault(c.family, set()).add(c.group)
        label[c.family] = c.label
    w = torch.ones(len(fam_idx))
    if power <= 0:
        return w
    for cls in (0, 1):
        fams = [f for f in groups if label[f] == cls]
        g = {f: len(groups[f]) for f in fams}
        raw = {f: g[f] ** -power for f in fams}
        scale = sum(g.values()) / sum(g[f] * raw[f] for f in fams)
        for f in fams:
            w[fam_idx[f]] = raw[f] * scale
    return w


def train_v2(a, t0: float, log) -> int:
    calls = load_calls(a.data, a.vocab_size)
    # Members of one ensemble share a split (--split-seed), so that the merged model's
    # thresholds are set on calls none of them trained on.
    train, val = split_by_group(calls, a.val_frac, a.split_seed if a.split_seed else a.seed)
    families = sorted({c.family for c in calls})
    fam_idx = {f: i for i, f in enumerate(families)}
    a.freq_table = freq_drop_table(train, a.vocab_size, a.freq_dropout) if a.freq_dropout > 0 else None
    log(f"{len(calls)} calls: train {len(train)} ({len({c.group for c in train})} groups), "
        f"validation {len(val)} ({len({c.group for c in val})} groups), {len(families)} families")
    n_pos = sum(c.label for c in train)
    counts = torch.tensor([len(train) - n_pos, n_pos], dtype=torch.float32)
    class_weight = counts.sum() / (2 * counts)
    fam_weight = family_weights(train, fam_idx, a.family_balance)
    if a.family_balance > 0:
        log(f"family balance {a.family_balance}: weights {fam_weight.min():.2f}..{fam_weight.max():.2f}")

    teacher = None
    if a.distill > 0 and a.teacher_models:
        teacher = CheckpointTeacher(a.teacher_models.split(","))
        log(f"teacher: {teacher.params}")
    elif a.distill > 0 and a.teacher == "char":
        from lrteacher import CharTeacher, load_pieces
        tok = tokenizer_path(a, a.teacher_tokenizer)
        teacher = cached_teacher(os.path.dirname(os.path.abspath(a.data)), tok, train,
                                 lambda: CharTeacher(load_pieces(tok), seed=1).fit(
                                     [c.ids for c in train], [c.label for c in train]), log)
        log(f"teacher: {teacher.params} ({tok}) fit on {len(train)} training calls")
    elif a.distill > 0:
        from lrteacher import LRTeacher
        teacher = LRTeacher(C=a.teacher_c).fit([c.ids for c in train], [c.label for c in train])
        log(f"teacher: {teacher.params} fit on {len(train)} training calls")

    # the pool draws from its own seeded generators, so building it first changes no weights
    pool = v2_val_pool(a, val)
    log("selection pool: " + ", ".join(f"{k} {len(v)}" for k, v in pool.items()))
    if a.merge:  # no model of its own to build or train
        return finish_merged(a, t0, log, calls, train, val, pool, families, fam_idx, n_pos)
    cfg = ModelConfig(vocab=a.vocab_size, embed=a.embed, hidden=a.hidden, layers=a.layers,
                      dropout=a.dropout, arch="pooled", families=tuple(families),
                      head_hidden=a.head_hidden, features=tuple(a.features.split(",")),
                      group_dropout=a.group_dropout, pool_norm=a.pool_norm,
                      pool_cap=a.pool_cap,
                      pool_max_h="max_h" in a.features.split(",") or a.legacy_layout)
    model = build_model(cfg)
    if a.embed_init > 0:
        with torch.no_grad():
            model.embed.weight.normal_(0.0, a.embed_init)
            model.embed.weight[0].zero_()
    if a.init_from:
        init_from(model, a.init_from, log)
    plain_embed = model.embed
    if a.char_embed > 0:
        if a.ema > 0:
            raise DataError("--char-embed does not combine with --ema")
        from lrteacher import load_pieces
        tok = tokenizer_path(a, a.tokenizer)
        model.embed = CharTiedEmbedding(model.embed, load_pieces(tok), a.char_embed)
        log(f"char-tied embedding: {model.embed.n_chars} characters of {tok}, init std {a.char_embed}")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    rng = random.Random(a.seed + 1)
    nrng = np.random.RandomState(a.seed + 1)

    best = (-math.inf, -1, None)
    history = []
    epochs_run = 0
    # Exponential moving average of the weights (--ema): one set of weights, evaluated and
    # exported in place of the last step's; smooths the late-epoch drift towards the corpus.
    ema = ({k: v.detach().clone().float() for k, v in model.state_dict().items()}
           if a.ema > 0 else None)
    for epoch in range(1, a.epochs + 1):
        te = time.time()
        if ema is not None and epoch > 1:
            model.load_state_dict(raw)  # continue training from the raw weights
        model.train()
        ex = v2_epoch(a, rng, nrng, train, fam_idx)
        if teacher is not None:
            tp = teacher.predict([e.ids for e in ex])
            for e, p in zip(ex, tp):
                e.teacher = float(p)
        ntok = sum(len(e.ids) for e in ex)
        tot = {"loss": 0.0, "ce": 0.0, "kd": 0.0, "fam": 0.0}
        nb = 0
        for b in v2_batches(ex, a.batch, rng, a.batch_tokens):
            x, lens, y, fam, tprob = v2_tensors(b)
            logits, flog = model.train_logits(x, lens)
            loss = torch.zeros(())
            has = y >= 0
            if has.any():
                if a.family_balance > 0:
                    # weighted mean, as cross_entropy(weight=) is, over class x family weights
                    w = class_weight[y[has]] * torch.where(fam[has] >= 0, fam_weight[fam[has].clamp(min=0)],
                                                           torch.ones(()))
                    ce = (F.cross_entropy(logits[has], y[has], reduction="none") * w).sum() / w.sum()
                else:
                    ce = F.cross_entropy(logits[has], y[has], weight=class_weight)
                loss = loss + ce
                tot["ce"] += float(ce)
            if teacher is not None:
                kd = F.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], tprob)
                loss = loss + a.distill * kd
                tot["kd"] += float(kd)
            hf = fam >= 0
            if a.family_weight > 0 and hf.any():
                fl = F.cross_entropy(flog[hf], fam[hf])
                loss = loss + a.family_weight * fl
                tot["fam"] += float(fl)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        if v.dtype.is_floating_point:
                            ema[k].mul_(a.ema).add_(v, alpha=1 - a.ema)
            tot["loss"] += float(loss)
            nb += 1
        epochs_run = epoch
        if ema is not None:
            raw = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(ema)
        ev = v2_eval_pool(model, pool)
        h = {"epoch": epoch, "examples": len(ex), "tokens": ntok,
             **{f"train_{k}": v / max(nb, 1) for k, v in tot.items()},
             **{f"val_auc_{k}": v for k, v in ev.items() if not k.startswith("_")},
             "seconds": round(time.time() - te, 1)}
        history.append(h)
        log(f"epoch {epoch}: {len(ex)} ex {ntok} tok, loss {h['train_loss']:.4f} (ce {h['train_ce']:.4f} "
            f"kd {h['train_kd']:.4f} fam {h['train_fam']:.4f}); pool AUC " +
            " ".join(f"{k} {v:.4f}" for k, v in ev.items() if not k.startswith("_")) + f" [{h['seconds']}s]")
        if a.save_epochs:
            save_checkpoint(model, os.path.join(a.out, f"epoch{epoch}.pt"))
        key = ev["all"]
        if math.isfinite(key) and key > best[0] + 1e-4:
            best = (key, epoch, plain_state(model))
        elif epoch - best[1] >= a.patience:
            log(f"early stop: no improvement since epoch {best[1]}")
            break
        if a.time_budget and time.time() - t0 > a.time_budget:
            log(f"time budget {a.time_budget}s reached after epoch {epoch}")
            break
    model.embed = plain_embed  # the character-tied table, if any, is folded into best[2]
    model.load_state_dict(best[2])
    model.eval()
    return finish_v2(a, t0, log, model, cfg, calls, train, val, pool, families, fam_idx, teacher,
                     history, epochs_run, best[1], n_pos)


def threshold_pool(a, val: List[Call]) -> List[np.ndarray]:
    """Synthetic normal pool the thresholds are set on (never real calls). Real normal calls
    score higher than clean synthetic ones (other speakers, topics and STT errors), so the pool
    is built to be hard: validation normal calls whole, a crop of each (starts and ends
    anywhere), a heavily corrupted copy (shuffled segments, 30% [UNK], 10% in masked spans),
    recombinations of 2-4 crops of normal calls from different families, and long excerpts of
    concatenated validation normals (1,000-8,000 tokens, light corruption)."""
    rng = random.Random(a.seed + 5)
    nrng = np.random.RandomState(a.seed + 5)
    normals = [c for c in val if c.label == 0]
    pool: List[np.ndarray] = []
    for c in normals:
        ids = np.asarray(c.ids, np.int64)
        pool.append(ids)
        pool.append(random_crop(rng, ids, a.crop_min, len(ids)))
        pool.append(corrupt(nrng, shuffle_segments(rng, ids), a.unk_id, 0.3, 0.0, 0.1))
        parts = [random_crop(rng, np.asarray(rng.choice(normals).ids, np.int64), a.crop_min, 512)
                 for _ in range(rng.randint(1, 3))]
        pool.append(np.concatenate([random_crop(rng, ids, a.crop_min, 512)] + parts))
    for _ in range(a.threshold_long):
        target = log_uniform_int(rng, 1000, 8000)
        parts = []
        total = 0
        while total < target:
            ids = np.asarray(rng.choice(normals).ids, np.int64)
            parts.append(ids)
            total += len(ids)
        seq = np.concatenate(parts)
        start = rng.randint(0, max(0, len(seq) - target))
        seq = corrupt(nrng, seq[start:start + target], a.unk_id, 0.1 * rng.random(), 0.0, 0.0)
        pool.append(seq)
    return pool


def finish_merged(a, t0, log, calls, train, val, pool, families, fam_idx, n_pos) -> int:
    """--merge: the members' checkpoints as one model (cwmodel.merge_ensemble, the mean of their
    logits), then thresholds, temperature, export and report as for a trained model."""
    paths = [p for p in a.merge.split(",") if p]
    members = [load_checkpoint(p) for p in paths]
    for p, m in zip(paths, members):
        if tuple(m.cfg.families) != tuple(families):
            raise DataError(f"{p}: trained on other families than {a.data}; an ensemble's members "
                            f"must come from the same corpus")
    model = merge_ensemble(members)
    info = []
    for p in paths:
        rp = os.path.join(os.path.dirname(p), "train_report.json")
        rep = {}
        if os.path.exists(rp):
            with open(rp, encoding="utf-8") as f:
                rep = json.load(f)
        info.append({"checkpoint": os.path.abspath(p), "sha256": sha256_file(p),
                     "seed": rep.get("seed"), "best_epoch": rep.get("best_epoch"),
                     "validation_roc_auc": rep.get("validation", {}).get("roc_auc"),
                     "temperature": rep.get("temperature", {}).get("T")})
    log(f"merged {len(members)} members into one LSTM (embed {model.cfg.embed}, hidden "
        f"{model.cfg.hidden}, pooled state {model.pooled_size})")
    a.ensemble_members = info
    return finish_v2(a, t0, log, model, model.cfg, calls, train, val, pool, families, fam_idx, None,
                     [], 0, 0, n_pos)


def finish_v2(a, t0, log, model, cfg, calls, train, val, pool, families, fam_idx, teacher,
              history, epochs_run, best_epoch, n_pos) -> int:
    ev = v2_eval_pool(model, pool)
    tpool = threshold_pool(a, val)
    temperature = 1.0
    if a.max_logit > 0:
        # Scores that reach float32 1.0 tie, and no threshold separates tied normal calls
        # (callwatch calibrate then cannot meet its target). Dividing the binary head by T changes
        # no ranking: T is the largest |logit(phishing) - logit(normal)| over the synthetic pools
        # over --max-logit (never below 1).
        seqs = list(tpool) + [np.asarray(c.ids, np.int64) for c in val]
        if a.calib:
            seqs += [np.asarray(c.ids, np.int64) for c in load_calls(a.calib, a.vocab_size)]
        m = float(np.max(np.abs(logit_diffs(model, seqs))))
        temperature = max(1.0, m / a.max_logit)
        with torch.no_grad():
            model.head.weight.div_(temperature)
            model.head.bias.div_(temperature)
        log(f"largest |logit difference| on the synthetic pools {m:.1f}: binary head divided by "
            f"T = {temperature:.3f} (--max-logit {a.max_logit})")
    ts = v2_predict(model, tpool)
    susp = max(0.5, fpr_threshold(ts, a.suspicious_fpr))
    th = {"suspicious": susp, "dangerous": max(susp, fpr_threshold(ts, a.dangerous_fpr))}
    calib_info = None
    if a.calib:
        # Held-out hard normals (legitimate calls that talk about scams, never trained on): the
        # same FPR targets on them, and each threshold is the higher of the two pools' values.
        cc = [c for c in load_calls(a.calib, a.vocab_size) if c.label == 0]
        if not cc:
            raise DataError(f"{a.calib}: no normal calls")
        cs = v2_predict(model, [np.asarray(c.ids, np.int64) for c in cc])
        from_pool = dict(th)
        cs_susp = fpr_threshold(cs, a.suspicious_fpr)
        cs_dang = fpr_threshold(cs, a.dangerous_fpr)
        susp = max(th["suspicious"], cs_susp)
        th = {"suspicious": susp, "dangerous": max(susp, th["dangerous"], cs_dang)}
        calib_info = {"path": os.path.abspath(a.calib), "sha256": sha256_file(a.calib),
                      "calls": len(cc), "groups": len({c.group for c in cc}),
                      "thresholds_synthetic_pool": from_pool,
                      "thresholds_calibration_pool": {"suspicious": cs_susp, "dangerous": cs_dang},
                      "fpr_at_suspicious": float((cs >= th["suspicious"]).mean()),
                      "fpr_at_dangerous": float((cs >= th["dangerous"]).mean())}
        log(f"calibration pool ({len(cc)} held-out hard normals): thresholds {calib_info['thresholds_calibration_pool']}"
            f", synthetic pool {from_pool}")
    # Validation calls whole: metrics, per-family recall (phishing) / FPR (normal), family head.
    vs = [np.asarray(c.ids, np.int64) for c in val]
    y = np.array([c.label for c in val])
    s = v2_predict(model, vs)
    fam_pred = []
    with torch.no_grad():
        order = sorted(range(len(vs)), key=lambda i: len(vs[i]))
        fp = np.zeros(len(vs), np.int64)
        for k in range(0, len(order), 64):
            idx = order[k:k + 64]
            x, lens, _, _, _ = v2_tensors([Ex2(vs[i], 0) for i in idx])
            fp[idx] = model.train_logits(x, lens)[1].argmax(-1).numpy()
        fam_pred = fp
    per_family: Dict[str, Dict[str, Any]] = {}
    for f in families:
        m = np.array([c.family == f for c in val])
        if not m.any():
            continue
        lab = int(y[m][0])
        ent = {"label": LABELS[lab], "calls": int(m.sum()),
               "family_head_accuracy": float((fam_pred[m] == fam_idx[f]).mean())}
        key = "recall" if lab == 1 else "fpr"
        for lvl in ("suspicious", "dangerous"):
            ent[f"{key}_at_{lvl}"] = float((s[m] >= th[lvl]).mean())
        per_family[f] = ent
    metrics = {
        "calls": len(val), "phishing": int(y.sum()), "normal": int((y == 0).sum()),
        "roc_auc": roc_auc(y, s),
        "at_0.5": metrics_at(y, s, 0.5),
        "at_suspicious": metrics_at(y, s, th["suspicious"]),
        "at_dangerous": metrics_at(y, s, th["dangerous"]),
        "selection_pool_roc_auc": {k: v for k, v in ev.items() if not k.startswith("_")},
        "threshold_pool": {"sequences": len(tpool),
                           "tokens_median": float(np.median([len(t) for t in tpool])),
                           "fpr_at_suspicious": float((ts >= th["suspicious"]).mean()),
                           "fpr_at_dangerous": float((ts >= th["dangerous"]).mean())},
        "per_family": per_family,
        "family_head_accuracy": float((fam_pred == np.array([fam_idx[c.family] for c in val])).mean()),
    }
    log(f"validation: AUC {metrics['roc_auc']:.4f}, pool AUC {ev['all']:.4f}, thresholds {th}, "
        f"family head acc {metrics['family_head_accuracy']:.3f}")
    onnx_path = os.path.join(a.out, "model.onnx")
    save_checkpoint(model, os.path.join(a.out, "model.pt"), extra={"thresholds": th})
    om = None
    if not a.no_export:
        om = export_onnx(model, onnx_path, metadata={"callwatch.seed": str(a.seed),
                                                     "callwatch.max_len": str(a.max_len)})
    report = {
        "seed": a.seed,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "selection": "ROC-AUC on the synthetic validation pool (validation calls whole, crops, "
                     "noisy crops, long concatenations); never real calls",
        "hyperparameters": {k: v for k, v in vars(a).items()
                            if k not in ("data", "out", "freq_table", "ensemble_members")},
        "architecture": {"type": "lstm-pooled", "vocab_size": cfg.vocab, "embed": cfg.embed,
                         "hidden": cfg.hidden, "layers": cfg.layers, "opset": OPSET,
                         "pooled_state": model.pooled_size, "features": list(cfg.features),
                         "head_hidden": cfg.head_hidden, "families": list(families)},
        "families": list(families),
        "labels": list(LABELS),
        "max_seq_len": a.max_len,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "commit": git_commit(),
        "teacher": teacher.params if teacher is not None else None,
        "ensemble": getattr(a, "ensemble_members", None),
        "data": {"path": os.path.abspath(a.data), "sha256": sha256_file(a.data),
                 "calls": len(calls), "train_calls": len(train), "validation_calls": len(val),
                 "train_groups": len({c.group for c in train}),
                 "validation_groups": len({c.group for c in val}),
                 "train_phishing": n_pos, "train_normal": len(train) - n_pos},
        "threshold_rule": (f"suspicious = max(0.5, lowest t with FPR <= {a.suspicious_fpr} on the "
                           f"synthetic normal pool); dangerous = max(suspicious, lowest t with FPR <= "
                           f"{a.dangerous_fpr}); pool (train.threshold_pool): validation normal "
                           f"calls whole, a crop of each, heavily corrupted shuffled copies, "
                           f"recombined crops of 2-4 normal calls, {a.threshold_long} long "
                           f"excerpts of concatenated validation normals (1,000-8,000 tokens)"
                           + (f"; each threshold then raised to the same FPR rule on the --calib pool "
                              f"of held-out hard normals (never trained on)" if a.calib else "")),
        "thresholds": th,
        "calibration_pool": calib_info,
        "temperature": {"T": temperature, "max_logit": a.max_logit,
                        "rule": "binary head divided by T = max(1, largest |logit difference| over "
                                "the synthetic pools (threshold pool, validation calls, calibration "
                                "calls) / max_logit), before thresholds: no ranking changes"},
        "validation": metrics,
        "history": history,
        "onnx_ops": op_list(om) if om is not None else None,
        "onnx_sha256": sha256_file(onnx_path) if om is not None else None,
        "train_seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(a.out, "train_report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    log(f"wrote {a.out}/model.pt{'' if a.no_export else ', model.onnx'} and train_report.json")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="train the callwatch LSTM and export model.onnx")
    ap.add_argument("--data", required=True, help="tokenized JSONL {id, group, label, ids}")
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=12, help="maximum epochs")
    ap.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=384, help="truncate calls to this many tokens")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--prefixes", type=int, default=1, help="random prefixes per call per epoch")
    ap.add_argument("--min-prefix", type=int, default=16)
    ap.add_argument("--val-frac", type=float, default=0.2)
    ap.add_argument("--suspicious-fpr", type=float, default=0.05)
    ap.add_argument("--dangerous-fpr", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is much faster on a shared 2-core machine (OpenMP spin-waits)")
    ap.add_argument("--variants-per-epoch", type=int, default=0,
                    help="random variants of each training base dialogue per epoch (0: all)")
    ap.add_argument("--val-variants", type=int, default=0,
                    help="first N variants of each validation base dialogue (0: all)")
    ap.add_argument("--concat", type=int, default=0,
                    help="long multi-call training sequences per epoch (half per label)")
    ap.add_argument("--concat-min", type=int, default=256, help="shortest concatenation target, tokens")
    ap.add_argument("--concat-max", type=int, default=3072, help="longest concatenation, tokens")
    ap.add_argument("--concat-window", type=int, default=0,
                    help="v2: train on a random window of this many tokens of each concatenation "
                         "(0: --max-len); real normal calls run to thousands of tokens")
    ap.add_argument("--concat-phish-share", type=float, default=0.5,
                    help="share of phishing parts in a phishing concatenation")
    ap.add_argument("--val-concat", type=int, default=0,
                    help="fixed long validation sequences from validation calls (half per label)")
    ap.add_argument("--word-dropout", type=float, default=0.0, help="P(token -> [UNK]) in training")
    ap.add_argument("--calib", default="",
                    help="v2: tokenized JSONL of held-out normal calls (never trained on); each threshold is "
                         "the higher of the synthetic pool's and this pool's value at the same FPR target")
    ap.add_argument("--freq-dropout", type=float, default=0.0,
                    help="v2: extra P(token -> [UNK]) scaled by its frequency: q * (1 - idf/max idf)")
    ap.add_argument("--unk-id", type=int, default=1)
    ap.add_argument("--weight-decay", type=float, default=0.0, help="AdamW decoupled weight decay")
    ap.add_argument("--select", choices=("loss", "auc"), default="loss",
                    help="early stopping / best epoch on validation loss or validation ROC-AUC (v1)")
    # v2 (--arch pooled)
    ap.add_argument("--arch", choices=("last", "pooled"), default="last",
                    help="last: v1 head on the last token; pooled: v2 pooled state + family head")
    ap.add_argument("--features", default="mean_h,max_h,last_h,mean_e", help="v2 head features")
    ap.add_argument("--head-hidden", type=int, default=0, help="v2 shared ReLU layer (0: linear heads)")
    ap.add_argument("--pool-norm", choices=POOL_NORMS, default="mean",
                    help="v2: divide the pooled sums by n (mean), sqrt(n), n^0.625 or n^0.75 (pow0.625, pow0.75)")
    ap.add_argument("--pool-cap", type=int, default=0,
                    help="v2 with --pool-norm sqrt: divide by n/sqrt(cap) past cap tokens (0: never)")
    ap.add_argument("--split-seed", type=int, default=0,
                    help="seed of the train/validation split (0: --seed); an ensemble's members share one")
    ap.add_argument("--merge", default="",
                    help="v2: comma-separated member checkpoints (model.pt) merged into one model that "
                         "scores their mean logit; no training, then thresholds and export as usual")
    ap.add_argument("--legacy-layout", action="store_true",
                    help="v2: carry the max_h accumulator in the pooled state even when the head "
                         "does not read it (the layout of models up to v0.8.0)")
    ap.add_argument("--group-dropout", type=float, default=0.0, help="v2: drop a whole feature group")
    ap.add_argument("--family-weight", type=float, default=0.2, help="v2: weight of the family loss")
    ap.add_argument("--char-embed", type=float, default=0.0,
                    help="v2: tie token embeddings through their characters (a token's vector = its own + "
                         "the mean of its characters'; init std of the character vectors; 0: off). "
                         "Folded into one table after training: the export does not change")
    ap.add_argument("--tokenizer", default="",
                    help="tokenizer.json of --data's ids (--char-embed; default: beside --data)")
    ap.add_argument("--family-balance", type=float, default=0.0,
                    help="v2: weigh each family's calls by (its base dialogues)^-P within its class "
                         "(0: by count, 1: every family alike)")
    ap.add_argument("--crops", type=int, default=1, help="v2: random crops per call per epoch")
    ap.add_argument("--crop-min", type=int, default=24, help="v2: shortest crop, tokens")
    ap.add_argument("--mix", type=int, default=0, help="v2: recombined sequences of 2-4 crops per epoch")
    ap.add_argument("--mix-label", choices=("latch", "teacher"), default="latch",
                    help="v2: label of a mixed sequence: phishing if any part is (latch) or the "
                         "teacher's soft label only (teacher)")
    ap.add_argument("--shuffle", type=float, default=0.0, help="v2: P(shuffle segments of a sequence)")
    ap.add_argument("--token-delete", type=float, default=0.0, help="v2: P(token deleted)")
    ap.add_argument("--span-mask", type=float, default=0.0, help="v2: share of tokens masked in spans")
    ap.add_argument("--distill", type=float, default=0.0,
                    help="v2: weight of BCE(student P(phishing), TF-IDF LR teacher's) on every example")
    ap.add_argument("--teacher-c", type=float, default=10.0, help="v2: teacher's inverse L2 strength")
    ap.add_argument("--teacher", choices=("ids", "char"), default="ids",
                    help="v2 --distill: the TF-IDF LR on token-id 1-3-grams (ids) or on character 1-3-grams "
                         "of the text the ids spell (char, `make baselines`' char-lr)")
    ap.add_argument("--teacher-tokenizer", default="",
                    help="tokenizer.json whose vocab spells the ids for --teacher char (default: beside --data)")
    ap.add_argument("--max-logit", type=float, default=0.0,
                    help="v2: after training, divide the binary head so that no synthetic call's "
                         "logit difference exceeds this (0: off); keeps scores off float32 1.0")
    ap.add_argument("--teacher-models", default="",
                    help="v2: comma-separated model.pt checkpoints whose mean logit is the --distill "
                         "teacher instead of the TF-IDF LR (distilling an ensemble into one model)")
    ap.add_argument("--batch-tokens", type=int, default=12288, help="v2: padded tokens per batch")
    ap.add_argument("--threshold-long", type=int, default=300,
                    help="v2: long normal excerpts in the threshold pool")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="v2: decay of an exponential moving average of the weights (0: off)")
    ap.add_argument("--embed-init", type=float, default=0.0,
                    help="v2: std of the embedding init (0: torch default N(0,1))")
    ap.add_argument("--save-epochs", action="store_true", help="v2: keep every epoch's checkpoint")
    ap.add_argument("--time-budget", type=float, default=0, help="v2: stop after the epoch that passes N s")
    ap.add_argument("--no-export", action="store_true", help="v2: skip the ONNX export (experiments)")
    ap.add_argument("--init-from", default="", help="v2: start from this checkpoint's weights (fine-tuning, "
                    "e.g. scripts/onnx2torch.py of a bundle); sizes must match, a family head over other "
                    "families starts fresh")
    a = ap.parse_args(argv)

    t0 = time.time()
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(a.out, exist_ok=True)
    log = lambda msg: print(f"[{time.time() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    if a.arch == "pooled":
        return train_v2(a, t0, log)
    calls = load_calls(a.data, a.vocab_size)
    train, val = split_by_group(calls, a.val_frac, a.seed)
    log(f"{len(calls)} calls: train {len(train)} ({len({c.group for c in train})} groups), "
        f"validation {len(val)} ({len({c.group for c in val})} groups)")

    n_pos = sum(c.label for c in train)
    counts = torch.tensor([len(train) - n_pos, n_pos], dtype=torch.float32)
    class_weight = counts.sum() / (2 * counts)

    cfg = ModelConfig(vocab=a.vocab_size, embed=a.embed, hidden=a.hidden, layers=a.layers,
                      dropout=a.dropout)
    model = CallWatchLSTM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    rng = random.Random(a.seed + 1)

    # Fixed validation set: every (selected) call whole and one seeded prefix, plus fixed long
    # concatenations of validation calls (what thresholds are calibrated on, gap 4).
    vrng = random.Random(a.seed + 2)
    val_sel = subsample_variants(val, a.val_variants, None)
    val_full: List[Example] = [(c.ids[:a.max_len], c.label) for c in val_sel]
    val_long: List[Example] = (concat_examples(val, random.Random(a.seed + 3), a.val_concat, a.concat_min,
                                               a.concat_max, a.max_len, a.concat_phish_share)
                               if a.val_concat > 0 else [])
    val_ex = list(val_full) + val_long
    for c in val_sel:
        p = prefix_len(vrng, len(c.ids[:a.max_len]), a.min_prefix)
        if p is not None:
            val_ex.append((c.ids[:p], c.label))
    log(f"validation set: {len(val_full)} calls, {len(val_long)} long sequences, "
        f"{len(val_ex) - len(val_full) - len(val_long)} prefixes")

    best = (math.inf, -1, None)  # (selection key, lower is better; epoch; state)
    history = []
    epochs_run = 0
    for epoch in range(1, a.epochs + 1):
        model.train()
        ex = epoch_examples(subsample_variants(train, a.variants_per_epoch, rng), rng, a.max_len,
                            a.prefixes, a.min_prefix)
        if a.concat > 0:
            ex += concat_examples(train, rng, a.concat, a.concat_min, a.concat_max, a.max_len,
                                  a.concat_phish_share)
        total, n = 0.0, 0
        for b in batches(ex, a.batch, rng):
            x, lens, y = tensors(b)
            x = word_dropout(x, a.word_dropout, a.unk_id)
            logits = model.logits_at_last(x, lens)
            loss = F.cross_entropy(logits, y, weight=class_weight)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss) * len(b)
            n += len(b)
        epochs_run = epoch
        vs, vloss = predict(model, val_ex, 64, class_weight)
        auc = roc_auc(np.array([lab for _, lab in val_ex]), vs)
        history.append({"epoch": epoch, "train_loss": total / n, "val_loss": vloss, "val_auc": auc})
        log(f"epoch {epoch}: train loss {total / n:.4f}, val loss {vloss:.4f}, val AUC {auc:.4f}")
        key = vloss if a.select == "loss" else -auc
        if math.isfinite(key) and key < best[0] - 1e-4:
            best = (key, epoch, {k: v.clone() for k, v in model.state_dict().items()})
        elif epoch - best[1] >= a.patience:
            log(f"early stop: no improvement since epoch {best[1]}")
            break
    if best[2] is None:
        raise DataError("validation loss never became finite; check the data and --lr")
    model.load_state_dict(best[2])
    model.eval()

    y = np.array([lab for _, lab in val_full])
    s, _ = predict(model, val_full, 64)
    # Thresholds on the harder pool: whole calls plus long concatenations (their normals score
    # higher than short synthetic calls, as real normals do).
    cal = val_full + val_long
    yc = np.array([lab for _, lab in cal])
    sc = np.concatenate([s, predict(model, val_long, 32)[0]]) if val_long else s
    th = choose_thresholds(yc, sc, a.suspicious_fpr, a.dangerous_fpr)
    prefix_auc = {}
    for plen in (32, 64, 128):
        pex = [(c.ids[:plen], c.label) for c in val if len(c.ids) > plen]
        if pex and len({lab for _, lab in pex}) == 2:
            ps, _ = predict(model, pex, 64)
            prefix_auc[str(plen)] = roc_auc(np.array([lab for _, lab in pex]), ps)
    metrics = {
        "calls": len(val_full), "phishing": int(y.sum()), "normal": int((y == 0).sum()),
        "roc_auc": roc_auc(y, s),
        "at_0.5": metrics_at(y, s, 0.5),
        "at_suspicious": metrics_at(y, s, th["suspicious"]),
        "at_dangerous": metrics_at(y, s, th["dangerous"]),
        "prefix_roc_auc": prefix_auc,
    }
    if val_long:
        yl, sl = yc[len(s):], sc[len(s):]
        metrics["long"] = {"sequences": len(val_long), "roc_auc": roc_auc(yl, sl),
                           "tokens_median": float(np.median([len(i) for i, _ in val_long])),
                           "at_suspicious": metrics_at(yl, sl, th["suspicious"]),
                           "at_dangerous": metrics_at(yl, sl, th["dangerous"])}
        metrics["calibration_pool"] = {"roc_auc": roc_auc(yc, sc),
                                       "at_suspicious": metrics_at(yc, sc, th["suspicious"]),
                                       "at_dangerous": metrics_at(yc, sc, th["dangerous"])}
    log(f"validation: AUC {metrics['roc_auc']:.4f}, F1@0.5 {metrics['at_0.5']['f1']:.4f}, "
        f"long AUC {metrics.get('long', {}).get('roc_auc', float('nan')):.4f}, thresholds {th}")

    onnx_path = os.path.join(a.out, "model.onnx")
    save_checkpoint(model, os.path.join(a.out, "model.pt"), extra={"thresholds": th})
    om = export_onnx(model, onnx_path, metadata={"callwatch.seed": str(a.seed),
                                                 "callwatch.max_len": str(a.max_len)})
    report = {
        "seed": a.seed,
        "epochs_run": epochs_run,
        "best_epoch": best[1],
        "hyperparameters": {k: v for k, v in vars(a).items()
                            if k not in ("data", "out", "freq_table", "ensemble_members")},
        "architecture": {"type": "lstm", "vocab_size": cfg.vocab, "embed": cfg.embed,
                         "hidden": cfg.hidden, "layers": cfg.layers, "opset": OPSET},
        "labels": list(LABELS),
        "max_seq_len": a.max_len,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "commit": git_commit(),
        "data": {"path": os.path.abspath(a.data), "sha256": sha256_file(a.data),
                 "calls": len(calls), "train_calls": len(train), "validation_calls": len(val),
                 "train_groups": len({c.group for c in train}),
                 "validation_groups": len({c.group for c in val}),
                 "train_phishing": n_pos, "train_normal": len(train) - n_pos},
        "threshold_rule": (f"suspicious = max(0.5, lowest t with FPR <= {a.suspicious_fpr} on normal "
                           f"validation calls and long validation concatenations); dangerous = max(suspicious, lowest t with FPR <= "
                           f"{a.dangerous_fpr})"),
        "thresholds": th,
        "validation": metrics,
        "history": history,
        "onnx_ops": op_list(om),
        "onnx_sha256": sha256_file(onnx_path),
        "train_seconds": round(time.time() - t0, 1),
    }
    with open(os.path.join(a.out, "train_report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    log(f"wrote {onnx_path} and train_report.json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DataError as e:
        print(f"train.py: {e}", file=sys.stderr)
        sys.exit(2)
