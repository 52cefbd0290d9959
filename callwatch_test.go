package callwatch

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
)

var shipped = filepath.Join("models", models.DefaultName)

func openDetector(t testing.TB, backend string, opts ...Option) *Detector {
	t.Helper()
	b, err := models.Load(shipped)
	if err != nil {
		t.Fatalf("load shipped bundle: %v", err)
	}
	be, err := OpenBackend(backend, b, ort.Options{}, nil)
	if err != nil {
		t.Fatalf("open %s backend: %v (run `make ort` for onnxruntime)", backend, err)
	}
	d, err := New(b, be, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func parityTexts(t testing.TB) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "parity_calls.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r struct{ Text string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, r.Text)
	}
	return texts
}

// TestWindowsCarryState checks that scoring in short windows that carry the
// LSTM state gives the same score as one long pass, on both backends.
func TestWindowsCarryState(t *testing.T) {
	texts := parityTexts(t)[:60]
	for _, backend := range []string{BackendORT, BackendNative} {
		t.Run(backend, func(t *testing.T) {
			whole := openDetector(t, backend)
			whole.window = 1 << 20
			windowed := openDetector(t, backend)
			windowed.window = 37
			a, err := whole.Classify(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := windowed.Classify(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i := range a {
				if a[i].Err != nil || b[i].Err != nil {
					t.Fatalf("text %d: %v / %v", i, a[i].Err, b[i].Err)
				}
				worst = math.Max(worst, math.Abs(a[i].Score-b[i].Score))
			}
			if worst > 1e-5 {
				t.Fatalf("windowed vs whole: max diff %.3g", worst)
			}
			t.Logf("%s: windows of 37 tokens vs one pass over %d texts: max diff %.3g", backend, len(texts), worst)
		})
	}
}

// TestBatchOrderIndependent checks that batch size and grouping never change
// a text's score beyond float noise, and that results come back in order.
func TestBatchOrderIndependent(t *testing.T) {
	texts := parityTexts(t)[:80]
	ref := openDetector(t, BackendORT, WithBatchSize(1))
	want, err := ref.Classify(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for _, bs := range []int{3, 16, 64} {
		d := openDetector(t, BackendORT, WithBatchSize(bs))
		got, err := d.Classify(context.Background(), texts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if d := math.Abs(got[i].Score - want[i].Score); d > 1e-5 {
				t.Errorf("batch %d text %d: %v vs batch 1 %v", bs, i, got[i].Score, want[i].Score)
			}
		}
	}
}

func TestConcurrentClassify(t *testing.T) {
	texts := parityTexts(t)[:40]
	for _, backend := range []string{BackendORT, BackendNative} {
		t.Run(backend, func(t *testing.T) {
			d := openDetector(t, backend)
			want, err := d.Classify(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := d.Classify(context.Background(), texts)
					if err != nil {
						t.Error(err)
						return
					}
					for i := range got {
						if got[i].Score != want[i].Score {
							t.Errorf("text %d: concurrent %v vs sequential %v", i, got[i].Score, want[i].Score)
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestVerdictLevels(t *testing.T) {
	d := openDetector(t, BackendNative)
	th := d.Bundle().Card.Thresholds
	tests := []struct {
		score float64
		label string
		level Level
	}{
		{0, LabelNormal, LevelNone},
		{math.Nextafter(th.Suspicious, 0), LabelNormal, LevelNone},
		{th.Suspicious, LabelPhishing, LevelSuspicious},
		{th.Dangerous, LabelPhishing, LevelDangerous},
		{1, LabelPhishing, LevelDangerous},
	}
	for _, tt := range tests {
		v := d.Verdict(tt.score)
		if v.Label != tt.label || v.Level != tt.level {
			t.Errorf("score %v: %+v, want %s/%s", tt.score, v, tt.label, tt.level)
		}
	}
}

// BenchmarkClassifyOne is the one-call latency on a typical transcript
// (the median-length sample), end to end: clean, tokenize, run, verdict.
func BenchmarkClassifyOne(b *testing.B) {
	texts := parityTexts(b)[:230] // the generated calls, not the joined long ones
	sorted := append([]string(nil), texts...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) < len(sorted[j]) })
	typical := sorted[len(sorted)/2]
	for _, backend := range []string{BackendORT, BackendNative} {
		b.Run(backend, func(b *testing.B) {
			d := openDetector(b, backend)
			ctx := context.Background()
			for b.Loop() {
				if _, err := d.Classify(ctx, []string{typical}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestTextNormalizer: a card that names polite-endings makes the detector's
// tokenizer read formal endings as polite ones, so a formal call and its
// polite form score the same; an unknown name is refused with the card named.
func TestTextNormalizer(t *testing.T) {
	b, err := models.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := LoadTokenizer(b)
	if err != nil {
		t.Fatal(err)
	}
	nb := *b
	nb.Card.TextNormalizer = "polite-endings"
	polite, err := LoadTokenizer(&nb)
	if err != nil {
		t.Fatal(err)
	}
	formal := "안녕하십니까 서울중앙지검 수사관입니다. 본인 명의 계좌가 범죄에 연루되어 확인하겠습니다"
	casual := "안녕하세요 서울중앙지검 수사관이에요. 본인 명의 계좌가 범죄에 연루되어 확인할게요"
	a, err := polite.Encode(formal)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := plain.Encode(casual)
	raw, _ := plain.Encode(formal)
	if !slices.Equal(a, want) || slices.Equal(a, raw) {
		t.Fatalf("normalized %v, polite form %v, unnormalized %v", a, want, raw)
	}
	nb.Card.TextNormalizer = "shout"
	_, err = LoadTokenizer(&nb)
	var be *models.BundleError
	if !errors.As(err, &be) || be.File != models.CardFile || !strings.Contains(err.Error(), `"shout"`) {
		t.Fatalf("unknown normalizer: %v", err)
	}
}

// TestShippedNormalizerIsMakeModels: make-model.sh's default NORMALIZER is
// the text normalizer the shipped card names, so `make model` rebuilds a
// model that reads text as the shipped one does.
func TestShippedNormalizerIsMakeModels(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("scripts", "make-model.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^NORMALIZER="\$\{NORMALIZER-([a-z-]*)\}"`).FindSubmatch(src)
	if m == nil {
		t.Fatal("scripts/make-model.sh: no NORMALIZER default found")
	}
	b, err := models.Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Card.TextNormalizer; got != string(m[1]) {
		t.Fatalf("the shipped card names text_normalizer %q, make-model.sh's default is %q", got, m[1])
	}
}
