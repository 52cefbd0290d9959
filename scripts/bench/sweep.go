package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
)

// knob is one configuration of the sweep.
type knob struct {
	backend                         string
	batch, workers, threads, window int
}

func (k knob) String() string {
	if k.backend == callwatch.BackendNative {
		return fmt.Sprintf("native batch %2d, %d workers, window %3d", k.batch, k.workers, k.window)
	}
	return fmt.Sprintf("ort    batch %2d, %d workers, %d intra-op threads, window %3d", k.batch, k.workers, k.threads, k.window)
}

// sweepKnobs: batch size × workers × onnxruntime intra-op threads at the
// default window, then the window at the default batch and workers.
func sweepKnobs(def knob) []knob {
	var ks []knob
	for _, batch := range []int{1, 8, 16, 32, 64} {
		for _, workers := range []int{1, 2} {
			for _, threads := range []int{1, 2} {
				ks = append(ks, knob{callwatch.BackendORT, batch, workers, threads, def.window})
			}
		}
	}
	for _, window := range []int{16, 64, 128, 512} {
		ks = append(ks, knob{callwatch.BackendORT, def.batch, def.workers, 1, window})
	}
	for _, batch := range []int{1, 8, 32, 64} {
		for _, workers := range []int{1, 2} {
			ks = append(ks, knob{callwatch.BackendNative, batch, workers, 0, def.window})
		}
	}
	return ks
}

// sweep measures ScoreIDs on the same ids for every knob, round-robin over
// the knobs rep by rep (so each sees the same load), and prints calls/s and
// the ratio to the CLI's defaults. This is where the defaults come from.
func (b *bench) sweep(ctx context.Context, w io.Writer) error {
	def := knob{callwatch.BackendORT, b.c.batch, 2, 1, b.c.window}
	ks := sweepKnobs(def)
	// One bundle for all knobs: Detectors only read it.
	bundle, err := models.Load(b.c.model)
	if err != nil {
		return err
	}
	dets := make([]*callwatch.Detector, len(ks))
	for i, k := range ks {
		be, err := callwatch.OpenBackend(k.backend, bundle, ort.Options{IntraOpThreads: k.threads}, nil)
		if err != nil {
			return fmt.Errorf("%v: %w", k, err)
		}
		d, err := callwatch.New(bundle, be, callwatch.WithBatchSize(k.batch), callwatch.WithWorkers(k.workers), callwatch.WithWindow(k.window))
		if err != nil {
			return err
		}
		defer d.Close()
		dets[i] = d
	}
	secs := make([][]float64, len(ks))
	for rep := 0; rep < b.c.reps; rep++ {
		fmt.Fprintf(os.Stderr, "bench: sweep rep %d/%d (%d configurations)\n", rep+1, b.c.reps, len(ks))
		for i, d := range dets {
			s, err := timeIt(func() error { _, _, err := d.ScoreIDs(ctx, b.ids, nil); return err })
			if err != nil {
				return fmt.Errorf("%v: %w", ks[i], err)
			}
			secs[i] = append(secs[i], s)
		}
	}
	med := func(i int) float64 { return (&series{Seconds: secs[i]}).median() }
	ref := med(slices.Index(ks, def))
	fmt.Fprintf(w, "callwatch bench -sweep: ScoreIDs on %d calls (%d tokens), medians of %d reps; load %s at start, %s at end\n\n",
		len(b.ids), b.tokens, b.c.reps, b.loadBeg, loadavg())
	fmt.Fprintf(w, "| %-62s | %8s | %8s | %10s |\n", "configuration", "median", "calls/s", "× default")
	fmt.Fprintf(w, "|%s|%s|%s|%s|\n", "----------------------------------------------------------------", "----------", "----------", "------------")
	for i, k := range ks {
		mark := ""
		if k == def {
			mark = " (default)"
		}
		fmt.Fprintf(w, "| %-62s | %6.3f s | %8.0f | %10.2f |\n", k.String()+mark, med(i), float64(len(b.ids))/med(i), ref/med(i))
	}
	return nil
}
