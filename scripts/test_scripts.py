#!/usr/bin/python3
"""Self-tests for the training and export scripts (a few seconds, CPU).

  /usr/bin/python3 -m unittest discover -s scripts -p 'test_*.py'
"""

from __future__ import annotations

import json
import os
import tempfile
import unittest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

import export  # noqa: E402
import onnxref  # noqa: E402
from cwmodel import CallWatchLSTM, CallWatchPooled, ModelConfig, load_checkpoint  # noqa: E402
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


def tiny_v2(layers: int = 2, head_hidden: int = 0, pool_norm: str = "mean",
            pool_cap: int = 0, features: tuple = ("mean_h", "max_h", "last_h", "mean_e"),
            pool_max_h: bool = True) -> CallWatchPooled:
    torch.manual_seed(5)
    return CallWatchPooled(ModelConfig(vocab=40, embed=6, hidden=10, layers=layers, arch="pooled",
                                       families=("a_normal", "b_phish", "c_phish"),
                                       head_hidden=head_hidden, pool_norm=pool_norm,
                                       pool_cap=pool_cap, features=features,
                                       pool_max_h=pool_max_h)).eval()


class PooledModelTest(unittest.TestCase):
    def test_streaming_equals_whole(self) -> None:
        # cap 8: the 50-token row crosses it inside a segment.
        for norm, cap in (("mean", 0), ("sqrt", 0), ("sqrt", 8), ("pow0.75", 0), ("pow0.625", 0)):
            with self.subTest(pool_norm=norm, pool_cap=cap):
                self.check_streaming(tiny_v2(pool_norm=norm, pool_cap=cap))
        m = tiny_v2(pool_norm="sqrt", features=("mean_h", "last_h", "mean_e", "max_e"))
        self.assertEqual(m.pooled_size, 2 * 10 + 6 + 1 + 6)
        self.check_streaming(m)
        m = tiny_v2(pool_norm="sqrt", features=("mean_h", "last_h", "mean_e"), pool_max_h=False)
        self.assertEqual(m.pooled_size, 10 + 6 + 1)
        self.check_streaming(m)
        m = tiny_v2(pool_norm="sqrt", features=("mean_h", "last_h", "mean_e", "att_h"), pool_max_h=False)
        with torch.no_grad():
            m.att_u.normal_(0, 1.0)
        self.assertEqual(m.pooled_size, 10 + 6 + 10 + 1 + 1)
        self.check_streaming(m)
        m = tiny_v2(pool_norm="sqrt", features=("mean_h", "last_h", "mean_e", "slog_h", "slog_e"), pool_max_h=False)
        self.assertEqual(m.pooled_size, 10 + 6 + 1)  # slog reads the sums already carried
        self.check_streaming(m)
        m = tiny_v2(pool_norm="sqrt", features=("mean_h", "last_h", "mean_e", "avg_h", "avg_e"), pool_max_h=False)
        self.assertEqual(m.pooled_size, 10 + 6 + 1)  # avg reads the sums already carried
        self.check_streaming(m)
        m = tiny_v2(pool_norm="sqrt", features=("mean_h", "last_h", "mean_e", "rms_h", "rms_e"), pool_max_h=False)
        self.assertEqual(m.pooled_size, 10 + 6 + 1)  # rms reads the sums already carried
        self.check_streaming(m)

    def test_rms(self) -> None:
        """rms_h / rms_e are the sums over their root mean square: a call that says the same
        thing k times over reads the same, and a zero sum (no tokens) stays zero."""
        m = tiny_v2(layers=1, pool_norm="sqrt", features=("rms_h", "rms_e"), pool_max_h=False)
        feats = {}
        m.head.register_forward_hook(lambda mod, inp, out: feats.update(z=inp[0]))
        p = torch.arange(17, dtype=torch.float32).unsqueeze(0) - 5.0
        p[0, -1] = 16.0
        with torch.no_grad():
            m.head_logits(p, torch.zeros(1, 10))
            a = feats["z"].clone()
            m.head_logits(p * 7.0, torch.zeros(1, 10))
            self.assertTrue(torch.allclose(a, feats["z"], atol=1e-5))
            h, e = p[0, :10], p[0, 10:16]
            want = torch.cat([h / h.pow(2).mean().sqrt(), e / e.pow(2).mean().sqrt()])
            self.assertTrue(torch.allclose(a[0], want, atol=1e-4))
            m.head_logits(torch.zeros(1, 17), torch.zeros(1, 10))
            self.assertEqual(float(feats["z"].abs().max()), 0.0)
        # Merged members each normalize their own block: groups must divide the sizes.
        with self.assertRaises(ValueError):
            CallWatchPooled(ModelConfig(vocab=40, embed=6, hidden=10, arch="pooled", features=("rms_h",),
                                        pool_max_h=False, norm_groups=4))

    def test_avg(self) -> None:
        """avg_h / avg_e divide the sums by n whatever pool_norm is (mean_* by sqrt(n) here)."""
        m = tiny_v2(layers=1, pool_norm="sqrt", features=("mean_h", "avg_h", "avg_e"), pool_max_h=False)
        feats = {}
        m.head.register_forward_hook(lambda mod, inp, out: feats.update(z=inp[0]))
        p = torch.arange(17, dtype=torch.float32).unsqueeze(0) - 5.0
        p[0, -1] = 16.0  # n
        with torch.no_grad():
            m.head_logits(p, torch.zeros(1, 10))
        want = torch.cat([p[0, :10] / 4.0, p[0, :10] / 16.0, p[0, 10:16] / 16.0])
        self.assertTrue(torch.allclose(feats["z"][0], want, atol=1e-6))

    def test_slog(self) -> None:
        """slog_h / slog_e read the running sums as sign(s) log(1 + |s|)."""
        m = tiny_v2(layers=1, pool_norm="sqrt", features=("slog_h", "slog_e"), pool_max_h=False)
        feats = {}
        m.head.register_forward_hook(lambda mod, inp, out: feats.update(z=inp[0]))
        p = torch.tensor([[3.0, -3.0, 0.0, 100.0, -0.5, 1e-3, 7.0, 8.0, 9.0, 10.0,
                           -1.0, 2.0, -4.0, 0.0, 5.0, 6.0, 12.0]])
        with torch.no_grad():
            m.head_logits(p, torch.zeros(1, 10))
        s = p[0, :16]
        self.assertTrue(torch.allclose(feats["z"][0], torch.sign(s) * torch.log1p(s.abs()), atol=1e-6))

    def test_att_h(self) -> None:
        """att_h is the gate-weighted mean of h: repeating a call's tokens does not change it
        (length-free), and a gate that picks nothing leaves the gated sum."""
        m = tiny_v2(layers=1, pool_norm="sqrt", features=("att_h",), pool_max_h=False)
        H = m.cfg.hidden
        feats = {}
        m.head.register_forward_hook(lambda mod, inp, out: feats.update(z=inp[0]))
        y = torch.randn(1, 6, H)
        e = torch.zeros(1, 6, m.cfg.embed)
        with torch.no_grad():
            m.att_u.normal_(0, 1.0)
            one = m.accumulate(e, y, torch.tensor([6]), torch.zeros(1, m.pooled_size))
            two = m.accumulate(e, y, torch.tensor([6]), one)
            m.head_logits(one, torch.zeros(1, H))
            a = feats["z"].clone()
            m.head_logits(two, torch.zeros(1, H))
            self.assertTrue(torch.allclose(a, feats["z"], atol=1e-5))
            g = torch.sigmoid((y * m.att_u).sum(2, keepdim=True) + m.att_b)
            want = (g * y).sum(1) / torch.clamp(g.sum(1), min=1.0)
            self.assertTrue(torch.allclose(a, want, atol=1e-5))
            m.att_b.fill_(-30.0)  # the gate picks nothing: a sum far below one token
            m.head_logits(m.accumulate(e, y, torch.tensor([6]), torch.zeros(1, m.pooled_size)), torch.zeros(1, H))
            self.assertLess(float(feats["z"].abs().max()), 1e-6)

    def test_compact_layout_same_scores(self) -> None:
        """Leaving the unread max_h accumulator out of p changes the state, not the scores."""
        feats = ("mean_h", "last_h", "mean_e")
        legacy = tiny_v2(pool_norm="sqrt", features=feats)
        compact = tiny_v2(pool_norm="sqrt", features=feats, pool_max_h=False)
        compact.load_state_dict(legacy.state_dict())
        row = torch.randint(1, 40, (2, 30))
        lens = torch.tensor([30, 17])
        with torch.no_grad():
            a, b = legacy(row, lens), compact(row, lens)
        self.assertTrue(torch.allclose(a[0], b[0], atol=1e-6))
        self.assertTrue(torch.allclose(a[4], b[4], atol=1e-6))
        self.assertEqual(tuple(b[3].shape), (2, 17))
        self.assertTrue(torch.allclose(a[3][:, :10], b[3][:, :10]))  # sum_h
        self.assertTrue(torch.allclose(a[3][:, 20:], b[3][:, 10:]))  # sum_e, n
        with self.assertRaises(ValueError):
            tiny_v2(pool_max_h=False)  # the head reads max_h

    def test_merge_ensemble(self) -> None:
        """The merged wider LSTM scores the members' mean logit, whole and streamed."""
        from cwmodel import merge_ensemble
        for layers, feats in ((1, ("mean_h", "last_h", "mean_e")), (2, ("mean_h", "max_h", "last_h", "mean_e", "max_e")),
                              (1, ("mean_h", "last_h", "mean_e", "avg_h", "avg_e"))):
            with self.subTest(layers=layers, features=feats):
                members = []
                for seed, (e, h) in enumerate(((6, 10), (4, 7), (5, 9))):
                    torch.manual_seed(seed)
                    members.append(CallWatchPooled(ModelConfig(
                        vocab=40, embed=e, hidden=h, layers=layers, arch="pooled", families=("a", "b", "c"),
                        pool_norm="sqrt", features=feats, pool_max_h="max_h" in feats)).eval())
                merged = merge_ensemble(members)
                self.assertEqual((merged.cfg.embed, merged.cfg.hidden), (15, 26))
                row = torch.randint(1, 40, (3, 25))
                lens = torch.tensor([25, 9, 1])
                with torch.no_grad():
                    got_b, got_f = merged.train_logits(row, lens)
                    outs = [m.train_logits(row, lens) for m in members]
                want_b = sum(o[0] for o in outs) / 3
                want_f = sum(o[1] for o in outs) / 3
                self.assertTrue(torch.allclose(got_b, want_b, atol=1e-5), (got_b - want_b).abs().max())
                self.assertTrue(torch.allclose(got_f, want_f, atol=1e-5), (got_f - want_f).abs().max())
                self.check_streaming(merged)
        # rms_* normalize each member's block on its own (members of one size)
        feats = ("mean_h", "last_h", "mean_e", "rms_h", "rms_e")
        members = []
        for seed in range(3):
            torch.manual_seed(seed)
            members.append(CallWatchPooled(ModelConfig(
                vocab=40, embed=6, hidden=8, arch="pooled", families=("a", "b"), pool_norm="sqrt",
                features=feats, pool_max_h=False)).eval())
        merged = merge_ensemble(members)
        self.assertEqual(merged.cfg.norm_groups, 3)
        row = torch.randint(1, 40, (3, 25))
        lens = torch.tensor([25, 9, 1])
        with torch.no_grad():
            got_b, _ = merged.train_logits(row, lens)
            want_b = sum(m.train_logits(row, lens)[0] for m in members) / 3
        self.assertTrue(torch.allclose(got_b, want_b, atol=1e-5), (got_b - want_b).abs().max())
        self.check_streaming(merged)
        self.assertEqual(ModelConfig.from_dict(merged.cfg.to_dict()), merged.cfg)
        with self.assertRaises(ValueError):  # blocks of different sizes cannot be told apart
            merge_ensemble([members[0], tiny_v2(layers=1, features=feats, pool_max_h=False)])
        with self.assertRaises(ValueError):
            merge_ensemble([tiny_v2(layers=1), tiny_v2(layers=2)])

    def test_pool_cap(self) -> None:
        """Up to cap tokens the divisor is sqrt(n); past it n/sqrt(cap), so a call that keeps
        saying the same thing keeps the same features instead of growing as sqrt(n)."""
        m = tiny_v2(pool_norm="sqrt", pool_cap=16)
        H, E = m.cfg.hidden, m.cfg.embed
        for n, want in ((4.0, 2.0), (16.0, 4.0), (64.0, 16.0)):
            pn = torch.zeros(1, m.pooled_size)
            lo, hi = m.layout["sum_e"]
            pn[0, lo:hi] = n  # sum_e = n: each token embedding all ones
            pn[0, -1] = n
            feats = {}
            m.head.register_forward_hook(lambda mod, inp, out: feats.update(z=inp[0]))
            with torch.no_grad():
                m.head_logits(pn, torch.zeros(1, H))
            self.assertAlmostEqual(float(feats["z"][0, -1]), n / want, places=5)
        with self.assertRaises(ValueError):
            tiny_v2(pool_norm="mean", pool_cap=16)

    def check_streaming(self, m: CallWatchPooled) -> None:
        row = torch.randint(1, 40, (1, 50))
        with torch.no_grad():
            whole = m(row, torch.tensor([50]))
            state = m.zero_state(1)
            for a, b in ((0, 1), (1, 20), (20, 21), (21, 50)):
                out = m(row[:, a:b], torch.tensor([b - a]), *state)
                state = out[1:4]
        for name, w, g in zip(("probs", "hn", "cn", "pn", "family_probs"), whole, out):
            self.assertLess(export.scaled_diff(g.numpy(), w.numpy()), 1e-5, name)

    def test_padding_does_not_touch_pooled_state(self) -> None:
        m = tiny_v2()
        row = torch.randint(1, 40, (1, 6))
        batch = torch.randint(0, 40, (3, 20))  # garbage padding
        batch[1, :6] = row[0]
        with torch.no_grad():
            alone = m(row, torch.tensor([6]))
            inside = m(batch, torch.tensor([20, 6, 9]))
        for a, b in zip(alone, inside):
            got = b[:, 1] if b.dim() == 3 else b[1]
            want = a[:, 0] if a.dim() == 3 else a[0]
            self.assertLess((got - want).abs().max().item(), 1e-6)

    def test_train_logits_equal_packed(self) -> None:
        m = tiny_v2(head_hidden=7)
        x = torch.randint(0, 40, (5, 17))
        lens = torch.tensor([5, 1, 17, 17, 3])
        with torch.no_grad():
            lg, fam = m.train_logits(x, lens)
            ref = m.encode(x, lens)
        self.assertLess((lg - ref[0]).abs().max().item(), 1e-6)
        self.assertLess((fam - ref[1]).abs().max().item(), 1e-6)

    def test_export_v2_contract(self) -> None:
        max_e = ("mean_h", "last_h", "mean_e", "max_e")
        for layers, hh, norm, cap, feats in ((1, 0, "mean", 0, None), (2, 8, "mean", 0, None),
                                             (1, 0, "sqrt", 0, None), (1, 0, "sqrt", 12, None),
                                             (2, 0, "sqrt", 0, max_e)):
            with self.subTest(layers=layers, pool_norm=norm, pool_cap=cap, features=feats), \
                    tempfile.TemporaryDirectory() as d:
                model = tiny_v2(layers, hh, norm, cap, *([feats] if feats else []))
                path = os.path.join(d, "m.onnx")
                with open(os.devnull, "w") as null:
                    export.export_onnx(model, path, log=null)
                m = onnx.load(path)
                self.assertEqual([i.name for i in m.graph.input], list(export.INPUTS_V2))
                self.assertEqual([o.name for o in m.graph.output], list(export.OUTPUTS_V2))
                self.assertLessEqual(set(export.op_list(m)), export.ALLOWED_OPS_V2)
                self.assertEqual(sum(n.op_type == "LSTM" for n in m.graph.node), layers)
                meta = {p.key: p.value for p in m.metadata_props}
                self.assertEqual(meta["callwatch.families"], "a_normal,b_phish,c_phish")
                self.assertEqual(meta["callwatch.pooled"], str(model.pooled_size))
                self.assertEqual(meta["callwatch.pool_norm"], norm)
                self.assertEqual(meta.get("callwatch.pool_cap", "0"), str(cap))
                # Unwired sequence_lens must be caught (the mask alone would hide it from pn).
                for n in m.graph.node:
                    if n.op_type == "LSTM":
                        n.input[4] = ""
                with self.assertRaises(export.ExportError):
                    export.check_structure(m, layers)
                with self.assertRaises(export.ExportError):
                    export.verify(model, m)

    def test_fixtures_v2_stream_cases(self) -> None:
        from fixtures import CaseBuilder
        model = tiny_v2()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.onnx")
            with open(os.devnull, "w") as null:
                om = export.export_onnx(model, path, log=null)
        cb = CaseBuilder(model, seed=2)
        cb.add_standard(long_len=40)
        self.assertLess(cb.check_onnx(om), 1e-5)
        cases = {c["name"]: c for c in cb.cases}
        whole, last = cases["whole_call"], cases["segments_part3"]
        self.assertLess(max(abs(a - b) for a, b in zip(whole["probs"], last["probs"])), 1e-6)
        self.assertIn("family_probs", whole)


class CheckpointTeacherTest(unittest.TestCase):
    def test_mean_logit_of_checkpoints(self) -> None:
        from cwmodel import save_checkpoint
        from train import CheckpointTeacher
        models = [tiny_v2(1), tiny_v2(2, pool_norm="sqrt")]
        seqs = [np.array([3, 4, 5]), np.arange(1, 40), np.array([7])]
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for k, m in enumerate(models):
                paths.append(os.path.join(d, f"m{k}.pt"))
                save_checkpoint(m, paths[-1])
            got = CheckpointTeacher(paths).predict(seqs)
        for i, s in enumerate(seqs):
            z = 0.0
            with torch.no_grad():
                for m in models:
                    lg = m.encode(torch.from_numpy(s)[None], torch.tensor([len(s)]))[0][0]
                    z += float(lg[1] - lg[0]) / len(models)
            self.assertAlmostEqual(got[i], 1 / (1 + np.exp(-z)), places=5)


class CharTeacherTest(unittest.TestCase):
    PIECES = ["[PAD]", "[UNK]", "[CLS]", "검찰", "##청", "수사", "##관", "안전", "##계좌", "택배", "도착", "##했습니다"]

    def test_decode_spells_the_words(self) -> None:
        from lrteacher import decode
        self.assertEqual(decode([3, 4, 5, 6, 2, 7, 8], self.PIECES), "검찰청 수사관 안전계좌")
        self.assertEqual(decode([9, 1, 10, 11, 0, 99], self.PIECES), "택배 \u25a1 도착했습니다 \u25a1")
        self.assertEqual(decode([], self.PIECES), "")

    def test_ranks_the_scam_words_and_caches(self) -> None:
        from lrteacher import CharTeacher
        from train import Call, cached_teacher
        scam = [[3, 4, 5, 6, 7, 8], [7, 8, 5, 6], [3, 4, 7, 8, 9]]
        normal = [[9, 10, 11], [10, 11, 9, 10, 11], [9, 9, 10, 11]]
        calls = [Call(id=f"c{i}", group=f"g{i}", label=y, ids=tuple(s), family="f")
                 for i, (s, y) in enumerate([(s, 1) for s in scam] + [(s, 0) for s in normal])]
        fits = []

        def fit():
            fits.append(1)
            return CharTeacher(self.PIECES).fit([c.ids for c in calls], [c.label for c in calls])

        with tempfile.TemporaryDirectory() as d:
            tok = os.path.join(d, "tokenizer.json")
            with open(tok, "w") as f:
                f.write("{}")
            t1 = cached_teacher(d, tok, calls, fit, lambda _: None)
            t2 = cached_teacher(d, tok, calls, fit, lambda _: None)
        self.assertEqual(len(fits), 1, "the second member loads the first one's teacher")
        p = t2.predict([[5, 6, 7, 8], [10, 11]])
        self.assertGreater(p[0], p[1])
        np.testing.assert_allclose(p, t1.predict([[5, 6, 7, 8], [10, 11]]))


class CharTiedEmbeddingTest(unittest.TestCase):
    PIECES = ["[PAD]", "[UNK]", "검찰", "##찰청", "검", "수사관", "##관", "7"]

    def test_table_equals_forward(self) -> None:
        from cwmodel import CharTiedEmbedding, plain_state
        torch.manual_seed(2)
        base = torch.nn.Embedding(len(self.PIECES), 4, padding_idx=0)
        emb = CharTiedEmbedding(base, self.PIECES, 0.5)
        self.assertEqual(emb.n_chars, 7)  # 검 찰 청 수 사 관 7
        ids = torch.tensor([[2, 3, 4, 0], [5, 6, 7, 1]])
        with torch.no_grad():
            table = emb.table()
            self.assertTrue(torch.allclose(emb(ids), table[ids], atol=1e-6))
            self.assertEqual(float(table[0].abs().max()), 0.0)  # [PAD] has no characters
            self.assertTrue(torch.allclose(table[1], base.weight[1]))  # nor [UNK]
            # "검" is its own vector plus the character's; "검찰" averages 검 and 찰
            c = emb.chars.weight
            self.assertTrue(torch.allclose(table[4], base.weight[4] + c[emb.idx[4, 0]]))
            self.assertTrue(torch.allclose(table[2], base.weight[2] + (c[emb.idx[2, 0]] + c[emb.idx[2, 1]]) / 2))
        # Tokens that share a character share its gradient.
        emb(torch.tensor([[4]])).sum().backward()
        g = emb.chars.weight.grad
        self.assertGreater(float(g[emb.idx[4, 0]].abs().sum()), 0.0)
        self.assertEqual(int(emb.idx[2, 0]), int(emb.idx[4, 0]))  # 검찰 starts with 검

        class Holder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = emb
                self.head = torch.nn.Linear(4, 2)
        sd = plain_state(Holder())
        self.assertEqual(sorted(sd), ["embed.weight", "head.bias", "head.weight"])
        self.assertTrue(torch.allclose(sd["embed.weight"], emb.table()))

    def test_train_char_embed(self) -> None:
        """train.py --char-embed trains through the tied table and writes a plain model: its
        checkpoint loads as any other and its export runs."""
        import tempfile
        import test_merge
        import train
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "calls.jsonl")
            test_merge.tiny_corpus(data)
            pieces = ["[PAD]", "[UNK]"] + [("##" if i % 3 else "") + chr(0xAC00 + i % 17) + chr(0xAC00 + i % 5)
                                           for i in range(2, test_merge.VOCAB)]
            with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
                json.dump({"model": {"vocab": {p: i for i, p in enumerate(pieces)}}}, f, ensure_ascii=False)
            out = os.path.join(d, "m")
            self.assertEqual(train.main(["--data", data, "--vocab-size", str(test_merge.VOCAB), "--arch", "pooled",
                                         "--embed", "6", "--hidden", "5", "--epochs", "1", "--threshold-long", "4",
                                         "--concat", "0", "--batch-tokens", "2048", "--features", "mean_h,last_h,mean_e",
                                         "--pool-norm", "sqrt", "--out", out, "--char-embed", "0.5"]), 0)
            m = load_checkpoint(os.path.join(out, "model.pt"))
            self.assertIsInstance(m.embed, torch.nn.Embedding)
            self.assertTrue(os.path.exists(os.path.join(out, "model.onnx")))


class FamilyWeightsTest(unittest.TestCase):
    def test_balance(self) -> None:
        """--family-balance 1 weighs every family of a class alike and keeps each class's total;
        0 leaves every call at 1."""
        from train import Call, family_weights
        calls = []
        for fam, label, bases in (("a_normal", 0, 2), ("b_normal", 0, 6), ("c_phish", 1, 4)):
            for g in range(bases):
                for v in range(3):  # variants share a group: bases count, not calls
                    calls.append(Call(id=f"{fam}-{g}-v{v}", group=f"{fam}-{g}", label=label, ids=(5,), family=fam))
        idx = {"a_normal": 0, "b_normal": 1, "c_phish": 2}
        w = family_weights(calls, idx, 1.0)
        self.assertTrue(torch.allclose(w, torch.tensor([2.0, 2.0 / 3.0, 1.0])), w)
        self.assertAlmostEqual(float(2 * w[0] + 6 * w[1]), 8.0, places=5)  # the class total
        self.assertTrue(torch.equal(family_weights(calls, idx, 0.0), torch.ones(3)))
        half = family_weights(calls, idx, 0.5)
        self.assertTrue(1.0 < float(half[0]) < 2.0 and 2.0 / 3.0 < float(half[1]) < 1.0, half)


class ReferenceOpsTest(unittest.TestCase):
    def test_new_ops(self) -> None:
        h = onnx.helper
        nodes = [
            h.make_node("Range", ["s", "e", "d"], ["r"]),
            h.make_node("Less", ["r", "lim"], ["lt"]),
            h.make_node("Cast", ["lt"], ["ltf"], to=onnx.TensorProto.FLOAT),
            h.make_node("Mul", ["ltf", "x"], ["m"]),
            h.make_node("ReduceSum", ["m", "ax"], ["rs"], keepdims=0),
            h.make_node("ReduceMax", ["x"], ["rm"], axes=[0], keepdims=0),
            h.make_node("Clip", ["x", "lo"], ["cl"]),
            h.make_node("Max", ["rs", "rm"], ["mx"]),
            h.make_node("Div", ["mx", "two"], ["y"]),
        ]
        i64 = lambda n, v: onnx.numpy_helper.from_array(np.array(v, np.int64), n)  # noqa: E731
        f32 = lambda n, v: onnx.numpy_helper.from_array(np.array(v, np.float32), n)  # noqa: E731
        g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, []),
                          h.make_tensor_value_info("cl", onnx.TensorProto.FLOAT, [4])],
                         [i64("s", 0), i64("e", 4), i64("d", 1), i64("lim", 2), i64("ax", [0]),
                          f32("lo", 1.0), f32("two", 2.0)])
        out = onnxref.run(h.make_model(g), {"x": np.array([3, -1, 5, 2], np.float32)})
        self.assertAlmostEqual(float(out["y"]), 2.5)  # max(3 + -1, 5) / 2
        np.testing.assert_array_equal(out["cl"], [3, 1, 5, 2])


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


class SweepSeedsTest(unittest.TestCase):
    def test_overlapping_seeds(self) -> None:
        """An ensemble sweep's seeds must not share members (seed k trains k..k+MEMBERS-1)."""
        import sweep
        cases = [([1, 3, 5], 2, None), ([1, 2, 3], 2, (1, 2)), ([5, 1, 2], 2, (1, 2)),
                 ([1, 2, 3, 4], 1, None), ([1, 3], 3, (1, 3)), ([1, 4, 7], 3, None), ([2, 2], 1, None)]
        for seeds, members, want in cases:
            with self.subTest(seeds=seeds, members=members):
                self.assertEqual(sweep.overlapping_seeds(seeds, members), want)


if __name__ == "__main__":
    unittest.main()
