//go:build !noort

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/models"
)

// trainingData writes the parity calls (generated corpus calls, not real
// ones) as labelled training JSONL, with mixed label spellings.
func trainingData(t *testing.T) string {
	t.Helper()
	normals := normalCalls(t) // calibrate_test.go: the legitimate families
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "parity_calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	nraw, _ := os.ReadFile(normals)
	isNormal := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(nraw)), "\n") {
		var r struct{ ID string }
		json.Unmarshal([]byte(line), &r)
		isNormal[r.ID] = true
	}
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r struct{ ID, Text string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		label := []string{"phishing", "Vishing", "1"}[i%3]
		if isNormal[r.ID] {
			label = []string{"normal", "BENIGN", "0"}[i%3]
		}
		k := strings.LastIndex(r.ID, "-v")
		if k < 0 {
			continue // the long concatenations mix calls of both labels
		}
		group := r.ID[:k]
		js, _ := json.Marshal(map[string]string{"id": r.ID, "text": r.Text, "label": label, "group": group})
		b.Write(append(js, '\n'))
	}
	p := filepath.Join(t.TempDir(), "calls.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTrainEndToEnd: train → bundle → parity → classify (both backends) →
// calibrate, on a small generated set, one short epoch.
func TestTrainEndToEnd(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, onnx, numpy, sklearn").Run(); err != nil {
		t.Fatalf("training needs /usr/bin/python3 with torch, onnx, numpy and sklearn (%v): run `make torch` (apt-get install python3-torch python3-onnx python3-sklearn)", err)
	}
	data := trainingData(t)
	out := filepath.Join(t.TempDir(), "mine")
	r := runCLI(t, "", nil, "train", "--data", data, "--from", modelDir, "--out", out, "--epochs", "1",
		"--train-args", "--variants-per-epoch 1", "--min-per-class", "20")
	if r.err != nil {
		t.Fatalf("train: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{"[1/8", "[8/8", "parity"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress on stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	var sum struct {
		Parity struct {
			OK bool `json:"ok"`
		} `json:"parity"`
		Records int `json:"records"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || !sum.Parity.OK || sum.Records < 100 {
		t.Fatalf("summary %+v (%v):\n%s", sum, err, r.stdout)
	}
	b, err := models.Load(out)
	if err != nil {
		t.Fatalf("the trained bundle does not load: %v", err)
	}
	if len(b.Card.Families) == 0 || b.Signature.Extra("family_probs") != len(b.Card.Families) {
		t.Errorf("families %v, signature %+v", b.Card.Families, b.Signature)
	}
	var card struct {
		Training struct {
			UserData []dataFile `json:"user_data"`
		} `json:"training"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, models.CardFile))
	if err := json.Unmarshal(raw, &card); err != nil || len(card.Training.UserData) != 1 || card.Training.UserData[0].SHA256 == "" {
		t.Errorf("card training.user_data %+v (%v)", card.Training.UserData, err)
	}
	var scores [2]string
	for i, backend := range []string{"ort", "native"} {
		r := runCLI(t, "", nil, "classify", "--model", out, "--backend", backend,
			"서울중앙지검 수사관입니다 명의가 도용돼서 안전계좌로 옮기셔야 합니다",
			"적금 만기 안내드리려고 연락드렸습니다 앱에서 확인하시면 됩니다")
		if r.err != nil {
			t.Fatalf("classify %s: %v\n%s", backend, r.err, r.stderr)
		}
		recs := jsonl(t, r.stdout)
		if len(recs) != 2 || recs[0]["family"] == nil {
			t.Fatalf("classify %s: %s", backend, r.stdout)
		}
		scores[i] = fmt.Sprint(recs[0]["score"], recs[1]["score"])
	}
	if scores[0] != scores[1] {
		t.Errorf("ort and native print different scores: %s vs %s", scores[0], scores[1])
	}
	r = runCLI(t, "", nil, "calibrate", "--model", out, "--data", normalCalls(t), "--fpr", "0.1", "--out", out)
	if r.err != nil {
		t.Fatalf("calibrate: %v\n%s", r.err, r.stderr)
	}
	if _, err := models.Load(out); err != nil {
		t.Fatalf("calibrated bundle: %v", err)
	}
}

// TestTrainBadInput: every data problem is reported before any training,
// naming the file and line, with exit 2.
func TestTrainBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	line := func(id, text, label string) string {
		js, _ := json.Marshal(map[string]string{"id": id, "text": text, "label": label})
		return string(js) + "\n"
	}
	many := func(n int, label string) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(line(fmt.Sprintf("%s%d", label, i), fmt.Sprintf("통화 내용 %s %d번 입니다", label, i), label))
		}
		return b.String()
	}
	good := many(25, "phishing") + many(25, "normal")
	for _, c := range []struct{ name, body, want string }{
		{"label.jsonl", good + line("x", "안녕하세요", "spam"), `line 51: unknown label "spam"`},
		{"nolabel.jsonl", good + `{"id":"y","text":"안녕"}` + "\n", "line 51: no label"},
		{"oneclass.jsonl", many(30, "normal"), "only normal calls"},
		{"few.jsonl", many(25, "phishing") + many(5, "normal"), "too few calls: 25 phishing and 5 normal"},
		{"dup.jsonl", good + line("z", "통화 내용 normal 3번 입니다", "normal"), "line 51: the same text as"},
		{"conflict.jsonl", good + line("w", "통화 내용 normal 3번 입니다", "phishing"), "with the other label"},
		{"empty.jsonl", good + line("e", " \u200b\t ", "normal"), "line 51: the text is empty after cleaning"},
		{"broken.jsonl", good + `{"id":` + "\n", "line 51"},
		{"calls.txt", good, "unknown format"},
		{"iddup.jsonl", good + line("normal3", "다른 내용입니다", "normal"), `id "normal3" already used`},
	} {
		r := runCLI(t, "", nil, "train", "--data", write(c.name, c.body), "--out", filepath.Join(dir, "out"))
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "[6/8") {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 before training, mentioning %q", c.name, r.code, r.stderr, c.want)
		}
	}
	// With --mix-corpus the project's corpus supplies both classes: one class of the user's own
	// calls passes the data checks (and here stops at the missing Python).
	r := runCLI(t, "", nil, "train", "--data", write("mine.jsonl", many(5, "normal")), "--mix-corpus", "--out", filepath.Join(dir, "m"), "--python", filepath.Join(dir, "no-python"))
	if r.code != 2 || strings.Contains(r.stderr, "only normal calls") || !strings.Contains(r.stderr, "apt-get install python3-torch") {
		t.Errorf("one class with --mix-corpus: exit %d, stderr %q; want the data accepted", r.code, r.stderr)
	}
	r = runCLI(t, "", nil, "train", "--data", write("ok.jsonl", good), "--out", filepath.Join(dir, "o"), "--python", filepath.Join(dir, "no-python"))
	if r.code != 2 || !strings.Contains(r.stderr, "apt-get install python3-torch") || !strings.Contains(r.stderr, "pip install torch") {
		t.Errorf("missing python: exit %d, stderr %q", r.code, r.stderr)
	}
}
