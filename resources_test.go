package callwatch

import (
	"bufio"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
)

// vmRSS reads the resident set size from /proc/self/status, in KiB.
func vmRSS(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("reading RSS needs Linux /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", sc.Text(), err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// raceBuild reports a -race test binary: each cycle then costs ~7x, and
// the race run is there to find data races, not to measure memory.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	return ok && slices.ContainsFunc(bi.Settings, func(s debug.BuildSetting) bool { return s.Key == "-race" && s.Value == "true" })
}

// settle returns memory the Go heap no longer needs to the OS and waits for
// goroutines that are exiting, so the figures compare like with like.
func settle() {
	for range 3 {
		goruntime.GC()
		debug.FreeOSMemory()
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLoadCloseNoLeak opens a detector from the bundle on disk, classifies
// with it and closes it, 200 times per backend. Resident memory and the
// goroutine count must stay flat: a leaked onnxruntime session (C memory
// the Go GC does not see) or a leaked goroutine would grow with the count.
func TestLoadCloseNoLeak(t *testing.T) {
	cycles := 200
	if raceBuild() {
		cycles = 30
		t.Logf("race build: %d cycles instead of 200 (run without -race for the leak figures)", cycles)
	}
	const (
		warmup = 10
		// Margins: RSS moves by a few MB with allocator and page-cache noise;
		// a leaked ORT session of this model costs about 3 MB (its weights),
		// so 200 leaks would add about 600 MB.
		rssMarginKB   = 48 << 10
		goroutineSlop = 2
	)
	texts := []string{
		"지금 바로 안전계좌로 이체하셔야 합니다 검찰청 수사관입니다 명의가 도용돼서요",
		"적금 만기 안내드리려고 연락드렸습니다 앱에서 확인하시거나 영업점 방문하시면 됩니다",
		strings.Repeat("고객님 대환대출 승인이 나서 기존 대출 상환하셔야 합니다 ", 45), // two windows
	}
	for _, backend := range []string{BackendNative, BackendORT} {
		t.Run(backend, func(t *testing.T) {
			var want []Result
			cycle := func() {
				b, err := models.Load(shipped)
				if err != nil {
					t.Fatal(err)
				}
				be, err := OpenBackend(backend, b, ort.Options{}, nil)
				if err != nil {
					t.Fatalf("open %s backend: %v (run `make ort` for onnxruntime)", backend, err)
				}
				d, err := New(b, be)
				if err != nil {
					t.Fatal(err)
				}
				res, err := d.Classify(context.Background(), texts)
				if err != nil {
					t.Fatal(err)
				}
				if want == nil {
					want = res
				}
				for i := range res {
					if res[i].Score != want[i].Score {
						t.Fatalf("text %d: score %v after reloading, first load %v", i, res[i].Score, want[i].Score)
					}
				}
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for range warmup {
				cycle()
			}
			settle()
			rss0, g0 := vmRSS(t), goruntime.NumGoroutine()
			start := time.Now()
			for range cycles {
				cycle()
			}
			settle()
			rss1, g1 := vmRSS(t), goruntime.NumGoroutine()
			t.Logf("%s: %d load/classify/close cycles in %v; RSS %d → %d KiB (%+d KiB, margin %d KiB); goroutines %d → %d (margin %d)",
				backend, cycles, time.Since(start).Round(time.Millisecond), rss0, rss1, rss1-rss0, rssMarginKB, g0, g1, goroutineSlop)
			if rss1-rss0 > rssMarginKB {
				t.Errorf("RSS grew by %d KiB over %d cycles (%d KiB per cycle): something is not released on Close", rss1-rss0, cycles, (rss1-rss0)/cycles)
			}
			if g1-g0 > goroutineSlop {
				t.Errorf("goroutines grew from %d to %d over %d cycles", g0, g1, cycles)
			}
		})
	}
}

// TestConcurrentEqualsSequential: many goroutines share one Detector, each
// scoring its own mix of single texts and slices in its own order; every
// result must equal the same call made alone.
func TestConcurrentEqualsSequential(t *testing.T) {
	texts := parityTexts(t)
	n := 60
	if raceBuild() {
		n = 24
	}
	texts = texts[:min(n, len(texts))]
	texts = append(texts, "", "   ") // rows that fail must fail the same way under load
	const workers = 16
	for _, backend := range []string{BackendNative, BackendORT} {
		t.Run(backend, func(t *testing.T) {
			d := openDetector(t, backend, WithBatchSize(8))
			ctx := context.Background()
			// Sequential references: each text alone, and fixed slices.
			single := make([]Result, len(texts))
			for i, s := range texts {
				r, err := d.Classify(ctx, []string{s})
				if err != nil {
					t.Fatal(err)
				}
				single[i] = r[0]
			}
			type span struct{ lo, hi int }
			var spans []span
			for lo := 0; lo < len(texts); lo += 13 {
				spans = append(spans, span{lo, min(lo+29, len(texts))})
			}
			sliced := make([][]Result, len(spans))
			for k, sp := range spans {
				r, err := d.Classify(ctx, texts[sp.lo:sp.hi])
				if err != nil {
					t.Fatal(err)
				}
				sliced[k] = r
			}
			same := func(a, b Result) bool {
				return a.Score == b.Score && a.Label == b.Label && a.Level == b.Level && (a.Err == nil) == (b.Err == nil)
			}
			var wg sync.WaitGroup
			errc := make(chan string, workers*4)
			start := time.Now()
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for step := range len(texts) {
						// Each worker walks the texts in its own order.
						i := (step*(2*w+1) + w) % len(texts)
						r, err := d.Classify(ctx, []string{texts[i]})
						if err != nil {
							errc <- err.Error()
							return
						}
						if !same(r[0], single[i]) {
							errc <- fmt.Sprintf("worker %d text %d: %+v, alone %+v", w, i, r[0], single[i])
							return
						}
						if step%17 == 0 {
							k := (w + step) % len(spans)
							sp := spans[k]
							rs, err := d.Classify(ctx, texts[sp.lo:sp.hi])
							if err != nil {
								errc <- err.Error()
								return
							}
							for j := range rs {
								if !same(rs[j], sliced[k][j]) {
									errc <- fmt.Sprintf("worker %d slice %d row %d: %+v, alone %+v", w, k, j, rs[j], sliced[k][j])
									return
								}
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errc)
			for e := range errc {
				t.Error(e)
			}
			t.Logf("%s: %d goroutines × %d texts (+ slices) on one detector in %v, all equal to sequential",
				backend, workers, len(texts), time.Since(start).Round(time.Millisecond))
		})
	}
}
