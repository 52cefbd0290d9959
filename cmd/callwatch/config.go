package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
	"github.com/callwatch/callwatch/server"
)

// One validated path for every setting: each key of the table below is
// read the same way from a flag, a CALLWATCH_* variable or callwatch.yaml
// (highest first), parsed by its kind, and refused with a message that
// names the key, where its value came from and what was expected.

type valueKind int

const (
	kindString valueKind = iota
	kindInt
	kindFloat
	kindBool
	kindDuration
)

func (k valueKind) String() string {
	return [...]string{"a string", "a whole number", "a number", "true or false", "a duration"}[k]
}

// keySpec is one config key: its flag ("" = config and environment only,
// e.g. secrets, which would show in ps on a command line), its kind, its
// default, the help text of its flag and, for keys that take one of a few
// words, those words (shell completion offers them).
type keySpec struct {
	key    string
	flag   string
	kind   valueKind
	def    any // string, int, int64, float64, bool or time.Duration, by kind
	usage  string
	values []string
}

// configKeys is every key callwatch reads, and the only place their flags
// are defined (addKeyFlags): a flag's name, type, default and help come from
// here, so the flag, the CALLWATCH_* variable and the callwatch.yaml key
// cannot drift apart. The environment variable of a key is "CALLWATCH_" +
// the key upper-cased with "." as "_".
var configKeys = buildConfigKeys()

func buildConfigKeys() []keySpec {
	sd := server.DefaultConfig()
	return []keySpec{
		// model
		{"model", "model", kindString, "",
			"model bundle directory (default: models/" + models.DefaultName + " above the working directory or beside the executable, else the model built into callwatch)", nil},
		{"backend", "backend", kindString, callwatch.BackendAuto,
			"inference backend: auto (onnxruntime if its library loads, else native), ort, native",
			[]string{callwatch.BackendAuto, callwatch.BackendORT, callwatch.BackendNative}},
		{"batch", "batch", kindInt, 32, "texts per backend call", nil},
		{"threads", "threads", kindInt, 1, "onnxruntime intra-op threads per session", nil},
		{"window", "window", kindInt, 32, "tokens per row per backend run (state carried; scores do not change): larger is up to ~10% faster and uses more memory", nil},
		{"ort.library", "ort-library", kindString, "", "path to libonnxruntime.so (>= " + ort.MinVersion + ")", nil},
		// stream alert policy (defaults shown; unset, the model card's policy applies)
		{"stream.smooth", "smooth", kindInt, 2, "segments averaged before comparing with the thresholds", nil},
		{"stream.hysteresis", "hysteresis", kindFloat, 0.1, "a suspicious call drops to none only below suspicious-hysteresis", nil},
		{"stream.reasons", "reasons", kindInt, 3, "segments named in each alert", nil},
		// server
		{"server.addr", "addr", kindString, "127.0.0.1:8080", "listen address (HOST:PORT)", nil},
		{"server.max_batch", "max-batch", kindInt, sd.MaxBatch, "texts or segments per backend batch", nil},
		{"server.max_wait", "max-wait", kindDuration, sd.MaxWait, "longest a request waits for others to join its batch", nil},
		{"server.max_queue", "max-queue", kindInt, sd.MaxQueue, "requests waiting per queue before answering 429", nil},
		{"server.workers", "workers", kindInt, sd.Workers, "backend batches running at once", nil},
		{"server.request_timeout", "request-timeout", kindDuration, sd.RequestTimeout, "per-request deadline", nil},
		{"server.max_body_bytes", "max-body-bytes", kindInt, sd.MaxBodyBytes, "request body limit (413 above)", nil},
		{"server.max_text_bytes", "max-text-bytes", kindInt, sd.MaxTextBytes, "one text's limit (413 above)", nil},
		{"server.max_texts", "max-texts", kindInt, sd.MaxTexts, "texts per classify/infer request", nil},
		{"server.sessions", "sessions", kindBool, sd.Sessions, "keep calls server-side for clients that send no state token", nil},
		{"server.session_ttl", "session-ttl", kindDuration, sd.SessionTTL, "idle time after which a stored call is dropped", nil},
		{"server.max_sessions", "max-sessions", kindInt, sd.MaxSessions, "calls kept server-side at most", nil},
		{"server.shutdown_timeout", "shutdown-timeout", kindDuration, 30 * time.Second, "how long in-flight requests may take to finish on SIGTERM", nil},
		{"server.log_level", "log-level", kindString, "info", "debug (one line per request), info, warn, error",
			[]string{"debug", "info", "warn", "error"}},
		{"server.max_inflight_bytes", "max-inflight-bytes", kindInt, sd.MaxInflightBytes, "body bytes of all requests in flight together (429 above)", nil},
		{"server.max_sessions_per_client", "max-sessions-per-client", kindInt, sd.MaxSessionsPerClient,
			"stored calls per client IP; over it the client's least recently used call is evicted (0: no quota)", nil},
		{"server.max_tracked_calls", "max-tracked-calls", kindInt, sd.MaxTrackedCalls, "token-carrying calls whose sequence numbers are remembered (replay checks)", nil},
		{"server.drain_delay", "drain-delay", kindDuration, sd.DrainDelay,
			"on SIGTERM, how long readiness answers 503 while requests are still served, before the listener closes", nil},
		{"server.state_precision", "state-precision", kindString, server.PrecisionFloat32,
			"model state in stream tokens: float32 (exact; 3.6 KB for a 3-reason call on the shipped model) or float16 (1.9 KB; scores move by up to ~3e-4, the same on every replica; faster)",
			[]string{server.PrecisionFloat32, server.PrecisionFloat16}},
		{"server.state_keys", "", kindString, "", "", nil},
		{"server.state_key", "", kindString, "", "", nil},
		// server access: API keys (a key on the command line would show in
		// ps, so they have no flag; the file holds hashes), TLS
		{"server.api_keys", "", kindString, "", "", nil},
		{"server.api_keys_file", "api-keys-file", kindString, "",
			"file of API key hashes, one per line: the hex SHA-256 of the key (printf %s KEY | sha256sum), then optional scopes classify,stream,admin; " +
				"keys themselves also come from CALLWATCH_SERVER_API_KEYS=\"KEY[:scope+scope],...\"", nil},
		{"server.metrics_auth", "metrics-auth", kindBool, false, "GET /metrics needs an API key with the admin scope too", nil},
		{"server.tls_cert", "tls-cert", kindString, "", "TLS certificate file (PEM; with --tls-key): serve HTTPS", nil},
		{"server.tls_key", "tls-key", kindString, "", "TLS private key file (PEM)", nil},
		{"server.tls_client_ca", "tls-client-ca", kindString, "", "CA file (PEM): require client certificates signed by it (mTLS)", nil},
		{"server.insecure", "insecure", kindBool, false, "allow listening outside loopback without API keys", nil},
	}
}

// Groups of keys whose flags commands share.
var (
	modelKeys  = []string{"model", "backend", "batch", "threads", "window", "ort.library"}
	policyKeys = []string{"stream.smooth", "stream.hysteresis", "stream.reasons"}
)

// serverKeys are the server.* keys that have a flag.
func serverKeys() []string {
	var ks []string
	for _, k := range configKeys {
		if strings.HasPrefix(k.key, "server.") && k.flag != "" {
			ks = append(ks, k.key)
		}
	}
	return ks
}

// addKeyFlags defines the flags of keys on fs from the table: type by kind,
// default, and help naming the environment variable that also sets it.
func addKeyFlags(fs *pflag.FlagSet, keys ...string) {
	for _, key := range keys {
		k := specOf(key)
		if k.flag == "" {
			panic("callwatch: config key " + key + " has no flag")
		}
		usage := k.usage + " [env " + envName(k.key) + "]"
		switch k.kind {
		case kindString:
			fs.String(k.flag, k.def.(string), usage)
		case kindInt:
			fs.Int64(k.flag, toInt64(k.def), usage)
		case kindFloat:
			fs.Float64(k.flag, k.def.(float64), usage)
		case kindBool:
			fs.Bool(k.flag, k.def.(bool), usage)
		case kindDuration:
			fs.Duration(k.flag, k.def.(time.Duration), usage)
		}
	}
}

// completeKeyValues registers shell completion of the words a key takes
// (--backend auto|ort|native) for the key flags cmd has.
func completeKeyValues(cmd *cobra.Command) {
	for _, k := range configKeys {
		if k.flag == "" || len(k.values) == 0 || cmd.Flags().Lookup(k.flag) == nil {
			continue
		}
		words := k.values
		// An error here is a flag registered twice: a programming error
		// that the tests catch, never a user's.
		if err := cmd.RegisterFlagCompletionFunc(k.flag, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp)); err != nil {
			panic(err)
		}
	}
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	}
	panic(fmt.Sprintf("callwatch: default %v (%T) is not a whole number", v, v))
}

// defString is a key's default as its flag would print it, parsed like any
// other value (setting.str, .integer, .duration, ...).
func (k keySpec) defString() string {
	switch d := k.def.(type) {
	case string:
		return d
	case float64:
		return strconv.FormatFloat(d, 'g', -1, 64)
	}
	return fmt.Sprint(k.def)
}

// otherEnv are CALLWATCH_* variables read that are not config keys.
var otherEnv = []string{"CALLWATCH_CONFIG"}

func envName(key string) string {
	return "CALLWATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func specOf(key string) keySpec {
	for _, k := range configKeys {
		if k.key == key {
			return k
		}
	}
	panic("callwatch: no config key " + key)
}

// checkFileKeys refuses keys in the config file that callwatch does not
// know (a misspelt key would otherwise be ignored silently).
func (e *env) checkFileKeys(path string) error {
	if e.v == nil {
		return nil
	}
	var unknown []string
	for _, k := range e.v.AllKeys() {
		if !slices.ContainsFunc(configKeys, func(s keySpec) bool { return s.key == k }) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	msg := make([]string, len(unknown))
	for i, k := range unknown {
		msg[i] = k
		if s := suggestKey(k); s != "" {
			msg[i] += " (did you mean " + s + "?)"
		}
	}
	return usagef("config file %s: unknown key %s; known keys: %s", path, strings.Join(msg, ", "), knownKeys())
}

func knownKeys() string {
	ks := make([]string, len(configKeys))
	for i, k := range configKeys {
		ks[i] = k.key
	}
	return strings.Join(ks, ", ")
}

// warnUnknownEnv prints a warning for each CALLWATCH_* variable that is no
// setting: a misspelt variable would otherwise be ignored silently.
func (e *env) warnUnknownEnv() {
	if e.environ == nil {
		return
	}
	for _, kv := range e.environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CALLWATCH_") || slices.Contains(otherEnv, name) {
			continue
		}
		if slices.ContainsFunc(configKeys, func(s keySpec) bool { return envName(s.key) == name }) {
			continue
		}
		hint := ""
		if s := suggestKey(strings.ToLower(strings.TrimPrefix(name, "CALLWATCH_"))); s != "" {
			hint = "; did you mean " + envName(s) + "?"
		}
		fmt.Fprintf(e.stderr, "callwatch: warning: environment variable %s is not a callwatch setting and is ignored%s\n", name, hint)
	}
}

// suggestKey is the known key closest to k (by edit distance, ignoring
// '.' vs '_'), or "".
func suggestKey(k string) string {
	norm := func(s string) string { return strings.ReplaceAll(s, ".", "_") }
	best, bestD := "", 4
	for _, s := range configKeys {
		if d := editDistance(norm(k), norm(s.key)); d < bestD {
			best, bestD = s.key, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// setting is one key's raw value and where it came from.
type setting struct {
	spec keySpec
	raw  any
	from string // "flag --x", "CALLWATCH_X", "config file" or "default"
	set  bool   // false: the default
}

// lookup returns key's value: flag > environment > config file > the
// key's default in the table.
func (e *env) lookup(fs *pflag.FlagSet, key string) setting {
	k := specOf(key)
	var f *pflag.Flag
	if k.flag != "" && fs != nil {
		f = fs.Lookup(k.flag)
	}
	if f != nil && f.Changed {
		return setting{k, f.Value.String(), "flag --" + k.flag, true}
	}
	if val := e.getenv(envName(k.key)); val != "" {
		return setting{k, val, envName(k.key), true}
	}
	if e.v != nil && e.v.IsSet(k.key) {
		return setting{k, e.v.Get(k.key), "config file " + e.configFile, true}
	}
	return setting{k, k.defString(), "default", false}
}

func (s setting) errorf(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	sep := ": "
	if strings.HasPrefix(msg, "must ") {
		sep = " "
	}
	return usagef("%s%s%s (from %s)", s.spec.key, sep, msg, s.from)
}

func (s setting) str() (string, error) {
	switch v := s.raw.(type) {
	case string:
		return strings.TrimSpace(v), nil
	case nil:
		return "", nil
	case int, int64, float64, uint64:
		return fmt.Sprint(v), nil
	}
	return "", s.errorf("must be %s, got %v", kindString, s.raw)
}

func (s setting) int64() (int64, error) {
	switch v := s.raw.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), nil
		}
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v), nil
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err == nil {
			return n, nil
		}
	}
	return 0, s.errorf("must be %s, got %s", kindInt, show(s.raw))
}

func (s setting) integer(lo, hi int64) (int, error) {
	n, err := s.int64()
	if err != nil {
		return 0, err
	}
	if n < lo || n > hi {
		return 0, s.errorf("must be between %d and %d, got %d", lo, hi, n)
	}
	return int(n), nil
}

func (s setting) float() (float64, error) {
	switch v := s.raw.(type) {
	case int:
		return float64(v), nil
	case float64:
		return v, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, nil
		}
	}
	return 0, s.errorf("must be %s, got %s", kindFloat, show(s.raw))
}

func (s setting) boolean() (bool, error) {
	switch v := s.raw.(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err == nil {
			return b, nil
		}
	}
	return false, s.errorf("must be %s, got %s", kindBool, show(s.raw))
}

// duration parses a Go duration ("10s", "1m30s", "500ms"). A bare number
// is refused, 0 aside: 10 would be 10 nanoseconds.
func (s setting) duration(min time.Duration) (time.Duration, error) {
	var d time.Duration
	switch v := s.raw.(type) {
	case int, int64, uint64, float64:
		if fmt.Sprint(v) != "0" {
			return 0, s.errorf("%v is a bare number without a unit; write a duration with its unit, e.g. %vs (seconds) or %vms (milliseconds)", v, v, v)
		}
	case string:
		t := strings.TrimSpace(v)
		if _, err := strconv.ParseFloat(t, 64); err == nil && t != "0" {
			return 0, s.errorf("%s is a bare number without a unit; write a duration with its unit, e.g. %ss (seconds) or %sms (milliseconds)", t, t, t)
		}
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return 0, s.errorf("%q is not a duration; write e.g. 10s, 500ms or 1m30s", t)
		}
	default:
		return 0, s.errorf("must be %s such as 10s, got %s", kindDuration, show(s.raw))
	}
	if d < min {
		return 0, s.errorf("must be at least %s, got %s", min, d)
	}
	return d, nil
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%v", v)
}
