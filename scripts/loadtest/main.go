// Command loadtest drives a callwatch server from a second process on
// loopback: N concurrent clients send a fixed number of requests mixing
// /v1/classify (a whole sample call) and streaming segments (each client
// plays sample calls segment by segment, carrying the state token). It
// reports throughput, p50/p99 latency, errors, batch sizes and the server's
// RSS before and after. It stops by itself after --requests or --max-time.
//
//	go build -o bin/callwatch ./cmd/callwatch
//	go run ./scripts/loadtest --server-bin bin/callwatch            # starts and stops its own server
//	go run ./scripts/loadtest --url http://127.0.0.1:8080            # an already running one
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/callwatch/callwatch/client"
	"github.com/callwatch/callwatch/server"
)

type sampleCall struct {
	ID       string `json:"id"`
	Segments []struct {
		Text  string  `json:"text"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
	} `json:"segments"`
}

type result struct {
	kind string
	d    time.Duration
	code string // "" ok
}

type summary struct {
	Clients        int                `json:"clients"`
	Requests       int64              `json:"requests"`
	Seconds        float64            `json:"seconds"`
	Throughput     float64            `json:"requests_per_second"`
	Errors         map[string]int     `json:"errors"`
	Latency        map[string]latency `json:"latency_ms"`
	RSSBeforeMiB   float64            `json:"server_rss_before_mib"`
	RSSAfterMiB    float64            `json:"server_rss_after_mib"`
	MeanBatch      map[string]float64 `json:"mean_batch_size"`
	Backend        string             `json:"backend"`
	ServerArgs     []string           `json:"server_args,omitempty"`
	StoppedByLimit bool               `json:"stopped_by_time_limit"`
	// CPU seconds the server and this client spent during the run, and
	// their sum per request: on a machine shared with other jobs the
	// throughput follows the share of the cores the run gets, the CPU
	// per request does not.
	ServerCPU     float64 `json:"server_cpu_s"`
	ClientCPU     float64 `json:"client_cpu_s"`
	CPUPerRequest float64 `json:"cpu_ms_per_request"`
	LoadAvg       string  `json:"load_average_before"`
}

type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		rawURL    = flag.String("url", "", "server to test (loopback only); empty: start --server-bin")
		bin       = flag.String("server-bin", "bin/callwatch", "callwatch binary to start when --url is empty")
		clients   = flag.Int("clients", 64, "concurrent clients")
		requests  = flag.Int64("requests", 10000, "requests in total")
		streamPct = flag.Float64("stream", 0.5, "fraction of requests that are streaming segments")
		maxTime   = flag.Duration("max-time", 5*time.Minute, "stop after this long even if requests remain")
		samples   = flag.String("samples", "server/static/samples.json", "sample calls")
		out       = flag.String("json", "", "also write the summary JSON here")
	)
	var serverArgs multiFlag
	flag.Var(&serverArgs, "server-arg", "extra argument for the started server (repeatable), e.g. --server-arg=--max-wait=1ms")
	flag.Parse()
	if *clients < 1 || *requests < 1 {
		return errors.New("--clients and --requests must be positive")
	}
	calls, err := loadSamples(*samples)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *maxTime)
	defer cancel()

	base := *rawURL
	var srv *exec.Cmd
	if base == "" {
		base, srv, err = startServer(ctx, *bin, serverArgs)
		if err != nil {
			return err
		}
		defer stopServer(srv)
	} else if err := loopbackOnly(base); err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients, DisableCompression: true}}
	c, err := client.New(base, client.WithHTTPClient(hc))
	if err != nil {
		return err
	}
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	err = c.WaitReady(rctx)
	rcancel()
	if err != nil {
		return err
	}
	sum := summary{Clients: *clients, Errors: map[string]int{}, Latency: map[string]latency{}, ServerArgs: serverArgs}
	before, _ := scrape(hc, base)
	cpu0 := selfCPU()
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(la)); len(f) >= 3 {
			sum.LoadAvg = strings.Join(f[:3], " ")
		}
	}

	var issued atomic.Int64
	results := make(chan result, 4096)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range *clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var call *client.Call
			var sc sampleCall
			seg := 0
			for n := 0; ; n++ {
				if issued.Add(1) > *requests || ctx.Err() != nil {
					return
				}
				if rng.Float64() < *streamPct {
					if call == nil || seg == len(sc.Segments) {
						sc = calls[rng.IntN(len(calls))]
						call, seg = c.NewCall(fmt.Sprintf("lt-%d-%d", w, n)), 0
					}
					s := sc.Segments[seg]
					t := time.Now()
					_, err := call.Feed(ctx, s.Text, s.Start, s.End)
					results <- result{kind: "segment", d: time.Since(t), code: errCode(err)}
					seg++
					if err != nil {
						call = nil // start a fresh call after an error
					}
				} else {
					k := calls[rng.IntN(len(calls))]
					var parts []string
					for _, s := range k.Segments {
						parts = append(parts, s.Text)
					}
					t := time.Now()
					_, err := c.Classify(ctx, strings.Join(parts, " "))
					results <- result{kind: "classify", d: time.Since(t), code: errCode(err)}
				}
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	lat := map[string][]time.Duration{}
	for r := range results {
		sum.Requests++
		if r.code != "" {
			sum.Errors[r.kind+":"+r.code]++
			continue
		}
		lat[r.kind] = append(lat[r.kind], r.d)
		lat["all"] = append(lat["all"], r.d)
	}
	el := time.Since(t0)
	sum.StoppedByLimit = ctx.Err() != nil
	sum.ClientCPU = round(selfCPU()-cpu0, 2)
	after, _ := scrape(hc, base)
	sum.ServerCPU = round(after["process_cpu_seconds_total"]-before["process_cpu_seconds_total"], 2)
	if sum.Requests > 0 {
		sum.CPUPerRequest = round(1000*(sum.ServerCPU+sum.ClientCPU)/float64(sum.Requests), 3)
	}
	sum.Seconds = round(el.Seconds(), 2)
	sum.Throughput = round(float64(sum.Requests)/el.Seconds(), 1)
	for k, ds := range lat {
		slices.Sort(ds)
		sum.Latency[k] = latency{N: len(ds), P50: ms(ds[len(ds)*50/100]), P99: ms(ds[min(len(ds)-1, len(ds)*99/100)]), Max: ms(ds[len(ds)-1])}
	}
	sum.RSSBeforeMiB = round(before["process_resident_memory_bytes"]/(1<<20), 1)
	sum.RSSAfterMiB = round(after["process_resident_memory_bytes"]/(1<<20), 1)
	sum.MeanBatch = map[string]float64{}
	for _, k := range []string{"classify", "segment"} {
		n := after[`callwatch_batch_size_count{kind="`+k+`"}`] - before[`callwatch_batch_size_count{kind="`+k+`"}`]
		s := after[`callwatch_batch_size_sum{kind="`+k+`"}`] - before[`callwatch_batch_size_sum{kind="`+k+`"}`]
		if n > 0 {
			sum.MeanBatch[k] = round(s/n, 2)
		}
	}
	if m, err := modelInfo(hc, base); err == nil {
		sum.Backend = m.Backend
	}
	js, _ := json.MarshalIndent(sum, "", "  ")
	fmt.Println(string(js))
	if *out != "" {
		if err := os.WriteFile(*out, append(js, '\n'), 0o644); err != nil {
			return err
		}
	}
	if sum.StoppedByLimit {
		return fmt.Errorf("stopped by --max-time %s after %d requests", *maxTime, sum.Requests)
	}
	return nil
}

func errCode(err error) string {
	if err == nil {
		return ""
	}
	var e *client.Error
	if errors.As(err, &e) {
		return string(e.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "client_deadline"
	}
	return "transport"
}

func loadSamples(path string) ([]sampleCall, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sample calls: %w (run from the repository root or pass --samples)", err)
	}
	var f struct{ Calls []sampleCall }
	if err := json.Unmarshal(raw, &f); err != nil || len(f.Calls) == 0 {
		return nil, fmt.Errorf("sample calls %s: %v", path, err)
	}
	return f.Calls, nil
}

// loopbackOnly refuses to load-test anything but this machine.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--url %s: this load test only targets loopback (127.0.0.1)", raw)
	}
	return nil
}

// startServer runs `callwatch serve` on a free loopback port.
func startServer(ctx context.Context, bin string, extra []string) (string, *exec.Cmd, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"serve", "--addr", addr, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "CALLWATCH_SERVER_STATE_KEYS=lt1:bG9hZHRlc3Qta2V5LTMyLXJhbmRvbS1ieXRlcy14eXohIQ==")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting %s: %w (build it with `go build -o bin/callwatch ./cmd/callwatch`)", bin, err)
	}
	go func() { // pass the server's warnings through, prefixed
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(os.Stderr, "server:", sc.Text())
		}
	}()
	return "http://" + addr, cmd, nil
}

func stopServer(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: server exited:", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
	}
}

// scrape reads the unlabelled and simply labelled samples of /metrics.
func scrape(hc *http.Client, base string) (map[string]float64, error) {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

func modelInfo(hc *http.Client, base string) (server.ModelInfo, error) {
	var mi server.ModelInfo
	resp, err := hc.Get(base + "/v1/model")
	if err != nil {
		return mi, err
	}
	defer resp.Body.Close()
	return mi, json.NewDecoder(resp.Body).Decode(&mi)
}

// selfCPU is this process's user and system CPU time so far, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func ms(d time.Duration) float64 { return round(float64(d.Microseconds())/1000, 2) }

func round(f float64, n int) float64 {
	p := 1.0
	for range n {
		p *= 10
	}
	return float64(int64(f*p+0.5)) / p
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
