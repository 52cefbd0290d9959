package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/api"
	"github.com/callwatch/callwatch/internal/records"
)

// The two output shapes of classify, shared with the server (package api).
type (
	verdictRecord = api.Verdict
	errorRecord   = api.RecordError
)

// addInputFlags adds the record-input flags shared by the commands that read
// records (classify, tokenize, parity, vocab).
func addInputFlags(cmd *cobra.Command) *inputOpts {
	o := &inputOpts{}
	fs := cmd.Flags()
	fs.StringVar(&o.input, "input", "", "read records from FILE ('-' for stdin) instead of TEXT arguments")
	fs.StringVar(&o.format, "format", "", "input format: text (one transcript per line), jsonl ({\"id\",\"text\"} per line), csv (header with id,text); default from the file extension, else jsonl when the input starts with {, else text")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(
		[]string{records.FormatText, records.FormatJSONL, records.FormatCSV}, cobra.ShellCompDirectiveNoFileComp))
	return o
}

type inputOpts struct {
	input, format string
}

// openRecords returns a reader over the TEXT arguments or the --input file.
func (e *env) openRecords(o *inputOpts, args []string) (records.Reader, func(), error) {
	noop := func() {}
	if o.input != "" && len(args) > 0 {
		return nil, noop, usagef("give either TEXT arguments or --input, not both")
	}
	if o.input == "" {
		if len(args) == 0 {
			return nil, noop, usagef("nothing to read: give TEXT arguments or --input FILE (or --input - for stdin)")
		}
		return &argReader{texts: args}, noop, nil
	}
	format := o.format
	if format == "" {
		switch {
		case strings.HasSuffix(o.input, ".jsonl"), strings.HasSuffix(o.input, ".ndjson"), strings.HasSuffix(o.input, ".json"):
			format = records.FormatJSONL
		case strings.HasSuffix(o.input, ".csv"):
			format = records.FormatCSV
		default:
			format = records.FormatText
		}
	}
	var r io.Reader = e.stdin
	closer := noop
	if o.input != "-" {
		f, err := os.Open(o.input)
		if err != nil {
			return nil, noop, usagef("cannot open input: %v", err)
		}
		r, closer = f, func() { f.Close() }
	}
	if o.format == "" && format == records.FormatText {
		// No --format and no telling extension (stdin, calls.txt): JSON records piped in
		// (`jq -c ... | callwatch classify --input -`) must not be scored as transcripts.
		br := bufio.NewReader(r)
		if startsWithJSONObject(br) {
			format = records.FormatJSONL
		}
		r = br
	}
	rr, err := records.NewReader(r, format, 0)
	if err != nil {
		closer()
		return nil, noop, usagef("%v", err)
	}
	return rr, closer, nil
}

// startsWithJSONObject reports whether the first non-blank byte (after an optional UTF-8 BOM)
// is '{'. It peeks one byte at a time, so live input is not waited on beyond its first byte.
func startsWithJSONObject(br *bufio.Reader) bool {
	bom := []byte{0xEF, 0xBB, 0xBF}
	for i := 1; i <= 64<<10; i++ {
		b, err := br.Peek(i)
		if len(b) < i || err != nil {
			return false
		}
		c := b[i-1]
		switch {
		case i <= 3 && bytes.HasPrefix(bom, b):
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// configWithRecords loads the configuration and opens the records to read:
// the common start of every record-reading command.
func (e *env) configWithRecords(fs *pflag.FlagSet, o *inputOpts, args []string) (config, records.Reader, func(), error) {
	noop := func() {}
	c, err := e.loadConfig(fs)
	if err != nil {
		return config{}, nil, noop, err
	}
	rr, closeIn, err := e.openRecords(o, args)
	if err != nil {
		return config{}, nil, noop, err
	}
	return c, rr, closeIn, nil
}

// argReader turns TEXT arguments into records with ids 1..n.
type argReader struct {
	texts []string
	i     int
}

func (a *argReader) Next() (records.Record, error) {
	if a.i >= len(a.texts) {
		return records.Record{}, io.EOF
	}
	a.i++
	return records.Record{ID: strconv.Itoa(a.i), Text: a.texts[a.i-1]}, nil
}

// chunkSize is how many records are read before scoring them: large enough
// for length-sorted batching, small enough that output streams.
const chunkSize = 512

func (e *env) classifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "classify [TEXT...] [--input FILE|-] [--format text|jsonl|csv]",
		Short: "Score transcripts: one JSONL verdict per input record, in order",
		Long: `classify scores each transcript and writes one JSON object per input record, in
input order: {"id","label","score","level","family","family_prob"} (score = P(phishing),
level none|suspicious|dangerous from the model card's thresholds). A record that
cannot be scored yields {"id","line","error"} and the run goes on (exit 1 at the end).
With --input -, records are answered as soon as they are scored (what is already
waiting is batched); Ctrl-C scores and writes what was read, then exits 130.`,
		Example: `  callwatch classify "검찰청 수사관입니다 안전계좌로 옮기셔야 합니다"
  callwatch classify --input calls.jsonl
  cat calls.txt | callwatch classify --input - --format text`,
	}
	o := addInputFlags(cmd)
	fs := cmd.Flags()
	addKeyFlags(fs, modelKeys...)
	serverURL := fs.String("server", "", "score on a running callwatch serve at this URL (http://HOST:PORT) instead of loading the model here")
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return e.classify(fs, o, *serverURL, args) }
	return cmd
}

// classify writes one verdict per record.
func (e *env) classify(fs *pflag.FlagSet, o *inputOpts, serverURL string, args []string) error {
	c, rr, closeIn, err := e.configWithRecords(fs, o, args)
	if err != nil {
		return err
	}
	defer closeIn()
	classifyTexts, closeScorer, err := e.scorer(c, serverURL)
	if err != nil {
		return err
	}
	defer closeScorer()

	out := newJSONLWriter(e.stdout)
	prog := e.newProgress()
	if prog.on {
		switch {
		case o.input == "":
			prog.setTotal(len(args))
		case o.input != "-":
			prog.setTotal(countLines(o.input, o.format == records.FormatCSV || (o.format == "" && strings.HasSuffix(o.input, ".csv"))))
		}
	}
	failed, total := 0, 0
	// Records are read on their own goroutine: each round blocks for one,
	// then takes what else is already waiting (up to chunkSize), so live
	// input is answered as it arrives and a file is still scored in large
	// length-sorted batches. A chunk being scored is finished even when
	// interrupted (it is at most chunkSize records; within interruptGrace):
	// Ctrl-C writes what has been read, then exits 130.
	done := make(chan struct{})
	defer close(done)
	feed := feedRecords(rr, done)
	scoreCtx, stopScoring := context.WithCancel(context.WithoutCancel(e.ctx))
	defer stopScoring()
	// A chunk hung on a slow --server still ends some time after Ctrl-C.
	grace := cmp.Or(e.interruptGrace, defaultInterruptGrace)
	defer context.AfterFunc(e.ctx, func() { time.AfterFunc(grace, stopScoring) })()
	for {
		chunk, rerr := nextChunk(e.ctx, feed, chunkSize)
		if len(chunk) > 0 {
			texts := make([]string, len(chunk))
			for i, r := range chunk {
				texts[i] = r.Text
			}
			res, err := classifyTexts(scoreCtx, texts)
			if err != nil {
				if ferr := out.Flush(); ferr != nil {
					return ferr
				}
				if e.ctx.Err() != nil {
					return &errInterrupted{written: total, err: e.ctx.Err()}
				}
				return err
			}
			prog.pause()
			for i, r := range chunk {
				total++
				var werr error
				switch {
				case r.Err != nil:
					failed++
					werr = out.Write(errorRecord{ID: r.ID, Line: r.Line, Error: r.Err.Error()})
				case res[i].Err != nil:
					failed++
					werr = out.Write(errorRecord{ID: r.ID, Line: r.Line, Error: recordError(res[i].Err)})
				default:
					v := res[i].Verdict
					werr = out.Write(verdictRecord{ID: r.ID, Label: v.Label, Score: round6(v.Score), Level: v.Level,
						Family: v.Family, FamilyProb: round6(v.FamilyProb)})
				}
				if werr != nil {
					return werr
				}
			}
			if err := out.Flush(); err != nil {
				return err
			}
			prog.update(total, failed)
		}
		if rerr != nil {
			prog.done(total, failed)
			if errors.Is(rerr, io.EOF) {
				break
			}
			if e.ctx.Err() != nil {
				return &errInterrupted{written: total, err: e.ctx.Err()}
			}
			return rerr
		}
	}
	if failed > 0 {
		return &errRecords{failed: failed, total: total}
	}
	return nil
}

// recordItem is one record from feedRecords, or the reader's final error
// (io.EOF at the end of input).
type recordItem struct {
	rec records.Record
	err error
}

// feedRecords reads rr on a goroutine until its end, an error, or done.
// The goroutine may stay blocked in a read of live input after done; it
// exits when that read returns.
func feedRecords(rr records.Reader, done <-chan struct{}) <-chan recordItem {
	ch := make(chan recordItem, chunkSize)
	go func() {
		defer close(ch)
		for {
			r, err := rr.Next()
			if err != nil && !errors.Is(err, io.EOF) {
				err = fmt.Errorf("reading input: %w", err)
			}
			if err == nil && r.Err == nil && r.Text == "" {
				r.Err = fmt.Errorf("empty text")
			}
			select {
			case ch <- recordItem{rec: r, err: err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// nextChunk blocks for one record, then takes up to n-1 more that are
// already waiting. It returns io.EOF or the read error (with the records
// before it) at the end of input; when ctx is done, the records already
// read and ctx's error.
func nextChunk(ctx context.Context, feed <-chan recordItem, n int) ([]records.Record, error) {
	var chunk []records.Record
	take := func(it recordItem, ok bool) error {
		if !ok {
			return io.EOF
		}
		if it.err != nil {
			return it.err
		}
		chunk = append(chunk, it.rec)
		return nil
	}
	select {
	case it, ok := <-feed:
		if err := take(it, ok); err != nil {
			return chunk, err
		}
	case <-ctx.Done():
	}
	for len(chunk) < n {
		if ctx.Err() != nil {
			// Interrupted: what has been read, however much.
			for {
				select {
				case it, ok := <-feed:
					if err := take(it, ok); err != nil {
						return chunk, ctx.Err()
					}
				default:
					return chunk, ctx.Err()
				}
			}
		}
		select {
		case it, ok := <-feed:
			if err := take(it, ok); err != nil {
				return chunk, err
			}
		default:
			return chunk, nil
		}
	}
	return chunk, nil
}

// eachChunk reads rr on its own goroutine and calls f with each chunk of
// records, in input order: it blocks for one record, then takes what else is
// already waiting (up to chunkSize), so live input is answered as it arrives
// and a file is still handled in large batches. It returns nil at the end
// of input, or the read error; on Ctrl-C, f still gets what was read, then
// eachChunk returns an errInterrupted counting the records f was given.
func (e *env) eachChunk(rr records.Reader, f func([]records.Record) error) error {
	done := make(chan struct{})
	defer close(done)
	feed := feedRecords(rr, done)
	n := 0
	for {
		chunk, rerr := nextChunk(e.ctx, feed, chunkSize)
		if len(chunk) > 0 {
			if err := f(chunk); err != nil {
				if e.ctx.Err() != nil {
					return &errInterrupted{written: n, err: e.ctx.Err()}
				}
				return err
			}
			n += len(chunk)
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			if e.ctx.Err() != nil {
				return &errInterrupted{written: n, err: e.ctx.Err()}
			}
			return rerr
		}
	}
}

// recordError phrases a per-record failure for the "error" field.
func recordError(err error) string {
	return err.Error()
}

func round6(f float64) float64 { return api.Round6(f) }

// jsonlWriter writes one JSON object per line; each record is encoded in
// full before any byte of it is written, so output stays valid JSONL even
// when the run stops early.
type jsonlWriter struct {
	w *bufio.Writer
}

func newJSONLWriter(w io.Writer) *jsonlWriter {
	return &jsonlWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

func (j *jsonlWriter) Write(v any) error {
	b, err := marshalLine(v)
	if err != nil {
		return err
	}
	if _, err := j.w.Write(b); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func (j *jsonlWriter) Flush() error {
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}

func marshalLine(v any) ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(sb.String()), nil
}

// progress shows records done (of the total, when known), the rate and the
// time left on one stderr line, only when stderr is a terminal. When stdout
// is a terminal too, pause erases the line before output is written, so a
// counter never ends up between verdict lines.
type progress struct {
	w      io.Writer
	on     bool
	shared bool          // stdout is a terminal as well
	shown  bool          // a progress line is on the screen now
	total  int           // records expected; 0: unknown
	every  time.Duration // least time between two redraws
	now    func() time.Time
	start  time.Time
	last   time.Time
}

// fileIsTerminal reports whether w is a terminal.
func fileIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newProgress returns a progress line on stderr, which commands writing
// results on stdout pause before each write.
func (e *env) newProgress() *progress {
	isTerminal := e.isTerminal
	if isTerminal == nil {
		isTerminal = fileIsTerminal
	}
	p := &progress{w: e.stderr, now: time.Now, every: cmp.Or(e.progressEvery, defaultProgressEvery)}
	p.start = p.now()
	p.on = isTerminal(e.stderr)
	p.shared = p.on && isTerminal(e.stdout)
	return p
}

// setTotal sets how many records are expected (0: unknown). An estimate is
// fine: a total that is passed is dropped.
func (p *progress) setTotal(n int) { p.total = n }

// countLines counts the lines of the file at path, for a progress total;
// 0 when it cannot be read. A CSV header is not a record.
func countLines(path string, csv bool) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n, last := 0, byte('\n')
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += bytes.Count(buf[:k], []byte{'\n'})
			last = buf[k-1]
		}
		if err != nil {
			break
		}
	}
	if last != '\n' {
		n++
	}
	if csv && n > 0 {
		n--
	}
	return n
}

// pause erases the progress line before stdout is written, when both are
// the same terminal; the next update draws it again.
func (p *progress) pause() {
	if p.shown && p.shared {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

func (p *progress) update(done, failed int) {
	if !p.on {
		return
	}
	now := p.now()
	if p.shown && now.Sub(p.last) < p.every {
		return
	}
	p.last, p.shown = now, true
	fmt.Fprint(p.w, "\r\x1b[K"+p.line(done, failed, now))
}

// line is the progress text: "1200/5000 records (3 failed), 850/s, 4s left".
func (p *progress) line(done, failed int, now time.Time) string {
	el := now.Sub(p.start).Seconds()
	var sb strings.Builder
	sb.WriteString("callwatch: ")
	if p.total > 0 && done <= p.total {
		fmt.Fprintf(&sb, "%d/%d records", done, p.total)
	} else {
		fmt.Fprintf(&sb, "%d records", done)
	}
	if failed > 0 {
		fmt.Fprintf(&sb, " (%d failed)", failed)
	}
	if el > 0 && done > 0 {
		rate := float64(done) / el
		fmt.Fprintf(&sb, ", %.0f/s", rate)
		if p.total > 0 && done <= p.total {
			left := time.Duration(float64(p.total-done) / rate * float64(time.Second))
			fmt.Fprintf(&sb, ", %s left", left.Round(time.Second))
		}
	}
	return sb.String()
}

func (p *progress) done(done, failed int) {
	if !p.on || p.last.IsZero() {
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[Kcallwatch: %d records (%d failed) in %s\n", done, failed, p.now().Sub(p.start).Round(time.Millisecond))
	p.shown = false
}

var _ = callwatch.LabelPhishing
