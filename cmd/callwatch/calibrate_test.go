package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callwatch/callwatch/models"
)

// normalCalls writes the parity calls whose ids name a legitimate family as
// a normals file (they are generated corpus calls, not real ones).
func normalCalls(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "parity_calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	normalFamilies := []string{"bank_", "card_company", "court_", "customer_", "debt_", "delivery_", "family_", "friend_",
		"government_", "hospital_", "insurance", "landlord_", "loan_consult", "police_real", "secondhand_trade", "telecom_billing"}
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var r struct{ ID, Text string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		for _, p := range normalFamilies {
			if strings.HasPrefix(r.ID, p) {
				js, _ := json.Marshal(map[string]string{"id": r.ID, "text": r.Text, "label": "normal"})
				b.Write(append(js, '\n'))
				n++
				break
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d normal calls in the parity set", n)
	}
	p := filepath.Join(t.TempDir(), "normals.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCalibrate(t *testing.T) {
	data := normalCalls(t)
	out := filepath.Join(t.TempDir(), "calibrated")
	r := runCLI(t, "", nil, "calibrate", "--model", modelDir, "--backend", "native", "--data", data, "--fpr", "0.05", "--out", out)
	if r.err != nil {
		t.Fatalf("calibrate: %v\n%s", r.err, r.stderr)
	}
	var rep calibrateReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if rep.Normal.WholeSuspicious > 0.05 || rep.Normal.StreamSuspicious > 0.05 {
		t.Errorf("normals flagged above the 5%% target: %+v", rep.Normal)
	}
	if rep.Normal.WholeDangerous > 0.0125+1e-9 || rep.Normal.StreamDangerous > 0.0125+1e-9 {
		t.Errorf("normals at dangerous above fpr/4: %+v", rep.Normal)
	}
	if !(rep.After.Suspicious > 0 && rep.After.Suspicious <= rep.After.Dangerous && rep.After.Dangerous < 1) {
		t.Fatalf("thresholds %+v", rep.After)
	}
	b, err := models.Load(out)
	if err != nil {
		t.Fatalf("calibrated bundle: %v", err)
	}
	orig, err := models.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	if b.ModelSHA256 != orig.ModelSHA256 {
		t.Error("calibrate changed the model file")
	}
	if b.Card.Thresholds != rep.After {
		t.Errorf("card thresholds %+v, report %+v", b.Card.Thresholds, rep.After)
	}
	var card struct {
		History []models.Thresholds `json:"threshold_history"`
	}
	raw, _ := os.ReadFile(filepath.Join(out, models.CardFile))
	if err := json.Unmarshal(raw, &card); err != nil || len(card.History) != 1 || card.History[0] != orig.Card.Thresholds {
		t.Errorf("threshold history %+v (%v), want the shipped thresholds", card.History, err)
	}
}

func TestCalibrateBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ name, body, want string }{
		{"phishing.jsonl", `{"id":"1","text":"안녕하세요"}` + "\n" + `{"id":"2","text":"검찰입니다","label":"phishing"}` + "\n", "line 2"},
		{"empty.jsonl", `{"id":"1","text":"   "}` + "\n", "line 1: empty text"},
		{"broken.jsonl", `{"id":"1","text":"안녕"}` + "\n" + `{"id":` + "\n", "line 2"},
		{"none.jsonl", "", "holds no calls"},
	} {
		r := runCLI(t, "", nil, "calibrate", "--model", modelDir, "--backend", "native", "--data", write(c.name, c.body))
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 mentioning %q", c.name, r.code, r.stderr, c.want)
		}
	}
	r := runCLI(t, "", nil, "calibrate", "--model", modelDir, "--data", "x.jsonl", "--fpr", "2")
	if r.code != 2 {
		t.Errorf("--fpr 2: exit %d", r.code)
	}
}
