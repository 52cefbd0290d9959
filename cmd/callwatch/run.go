package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/models"
	cwruntime "github.com/callwatch/callwatch/runtime"
	"github.com/callwatch/callwatch/runtime/ort"
	"github.com/callwatch/callwatch/tokenize"
)

type env struct {
	v          *viper.Viper // the config file's contents, set by loadConfig (nil: no file)
	configFile string
	ctx        context.Context
	getenv     func(string) string
	environ    func() []string // nil: unknown CALLWATCH_* variables are not looked for
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer

	// What tests change; zero values mean the defaults below.
	isTerminal     func(io.Writer) bool // nil: fileIsTerminal
	progressEvery  time.Duration        // least time between progress redraws (200ms)
	interruptGrace time.Duration        // how long records read may still score after Ctrl-C (10s)
}

const (
	defaultProgressEvery  = 200 * time.Millisecond
	defaultInterruptGrace = 10 * time.Second
)

// run is the whole program; main only wires the process to it so tests can
// drive every command in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	return runEnviron(ctx, args, getenv, nil, stdin, stdout, stderr)
}

// runEnviron is run that also warns about CALLWATCH_* variables in
// environ that are no setting.
func runEnviron(ctx context.Context, args []string, getenv func(string) string, environ func() []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{ctx: ctx, getenv: getenv, environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	return e.execute(args)
}

// execute runs the command line args; errors are reported on e.stderr
// and returned for their exit code.
func (e *env) execute(args []string) (err error) {
	stderr := e.stderr
	var cmd *cobra.Command
	defer func() {
		// The libraries below are known to panic on odd input; no panic may
		// reach a user as a crash.
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v (please report this with the input that caused it)", r)
		}
		if err == nil {
			return
		}
		fmt.Fprintf(stderr, "callwatch: %v\n", err)
		var cl *errCommandLine
		if errors.As(err, &cl) && (cl.help != "" || cmd != nil) {
			help := cl.help
			if help == "" {
				help = cmd.CommandPath()
			}
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", help)
		}
	}()
	root := e.newRootCmd()
	root.SetArgs(args)
	cmd, err = root.ExecuteContextC(e.ctx)
	return err
}

// config holds the model settings every scoring command reads.
type config struct {
	Model      string
	Backend    string
	Batch      int
	Threads    int
	Window     int
	ORTLibrary string
}

// loadConfig layers defaults < config file < environment < flags, through
// the one key table (config.go): unknown keys in the file are an error,
// unknown CALLWATCH_* variables a warning.
func (e *env) loadConfig(fs *pflag.FlagSet) (config, error) {
	e.v, e.configFile = nil, ""
	e.warnUnknownEnv()
	read := func(p string) error {
		v := viper.New()
		v.SetConfigType("yaml")
		v.SetConfigFile(p)
		if err := v.ReadInConfig(); err != nil {
			return err
		}
		e.v, e.configFile = v, p
		return e.checkFileKeys(p)
	}
	path := e.configPath(fs)
	if path != "" {
		if err := read(path); err != nil {
			if _, ok := err.(*errUsage); ok {
				return config{}, err
			}
			return config{}, usagef("cannot read config file %s: %w; fix or remove it, or point --config elsewhere", path, err)
		}
	} else {
		// Look for the file by its full name: viper's own search also
		// matches a bare "callwatch" — the binary itself when run from its
		// directory.
		dirs := []string{"."}
		if x := e.getenv("XDG_CONFIG_HOME"); x != "" {
			dirs = append(dirs, filepath.Join(x, "callwatch"))
		} else if h := e.getenv("HOME"); h != "" {
			dirs = append(dirs, filepath.Join(h, ".config", "callwatch"))
		}
	search:
		for _, dir := range dirs {
			for _, name := range []string{"callwatch.yaml", "callwatch.yml"} {
				p := filepath.Join(dir, name)
				if st, err := os.Stat(p); err == nil && !st.IsDir() {
					if err := read(p); err != nil {
						if _, ok := err.(*errUsage); ok {
							return config{}, err
						}
						return config{}, usagef("cannot read config file %s: %w; fix or remove it", p, err)
					}
					break search
				}
			}
		}
	}
	var c config
	var err error
	str := func(key string) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = e.lookup(fs, key).str()
		return s
	}
	num := func(key string, lo, hi int64) int {
		if err != nil {
			return 0
		}
		var n int
		n, err = e.lookup(fs, key).integer(lo, hi)
		return n
	}
	c.Model = str("model")
	c.Backend = str("backend")
	c.Batch = num("batch", 1, 4096)
	c.Threads = num("threads", 1, 256)
	c.Window = num("window", 1, 1<<20)
	c.ORTLibrary = str("ort.library")
	if err != nil {
		return c, err
	}
	switch c.Backend {
	case callwatch.BackendAuto, callwatch.BackendORT, callwatch.BackendNative:
	default:
		return c, usagef("backend (from %s): unknown backend %q: use auto, ort or native", e.lookup(fs, "backend").from, c.Backend)
	}
	return c, nil
}

// configPath is --config or $CALLWATCH_CONFIG ("" means search).
func (e *env) configPath(fs *pflag.FlagSet) string {
	var path string
	if fs.Lookup("config") != nil {
		path, _ = fs.GetString("config")
	}
	if path == "" {
		path = e.getenv("CALLWATCH_CONFIG")
	}
	return path
}

// findDefaultModel looks for models/<default> above the working directory,
// then beside the executable; loadBundle falls back to the built-in bundle.
func findDefaultModel() (string, error) {
	rel := filepath.Join("models", models.DefaultName)
	var tried []string
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			p := filepath.Join(dir, rel)
			tried = append(tried, p)
			if _, err := os.Stat(filepath.Join(p, models.CardFile)); err == nil {
				return p, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		for _, p := range []string{filepath.Join(filepath.Dir(exe), rel), filepath.Join(filepath.Dir(exe), "..", rel)} {
			tried = append(tried, p)
			if _, err := os.Stat(filepath.Join(p, models.CardFile)); err == nil {
				return p, nil
			}
		}
	}
	return "", usagef("default model bundle not found (looked in %s); pass --model DIR or set CALLWATCH_MODEL", strings.Join(tried, ", "))
}

// loadBundle resolves and verifies the model bundle.
func (e *env) loadBundle(c config) (*models.Bundle, error) {
	dir := c.Model
	if dir == "" {
		d, err := findDefaultModel()
		if err != nil {
			// No bundle on disk: the one built into this binary.
			b, err := models.LoadDefault()
			if err != nil {
				return nil, &errUsage{err}
			}
			return b, nil
		}
		dir = d
	}
	b, err := models.Load(dir)
	if err != nil {
		return nil, &errUsage{err}
	}
	return b, nil
}

// openDetector loads the bundle and the configured backend. The onnxruntime
// library loads while the bundle is read, and the tokenizer while the session
// is created: a cold start is then about the library's load time, not the sum.
func (e *env) openDetector(c config) (*callwatch.Detector, error) {
	callwatch.PreloadORT(c.Backend, e.ortOptions(c))
	b, err := e.loadBundle(c)
	if err != nil {
		return nil, err
	}
	type loaded struct {
		tok *tokenize.Tokenizer
		err error
	}
	tc := make(chan loaded, 1)
	go func() {
		tok, err := callwatch.LoadTokenizer(b)
		tc <- loaded{tok, err}
	}()
	be, err := e.openBackend(c, c.Backend, b)
	t := <-tc
	if err != nil {
		return nil, err
	}
	// The parsed graph (the size of model.onnx again) only serves to create the
	// backend; the detector keeps the bundle for its card and files. Dropping it
	// lowers the CLI's peak RSS by about twice its size (GC's heap goal).
	b.Proto = nil
	if t.err != nil {
		be.Close()
		return nil, &errUsage{t.err}
	}
	d, err := callwatch.New(b, be, callwatch.WithTokenizer(t.tok), callwatch.WithBatchSize(c.Batch), callwatch.WithWindow(c.Window))
	if err != nil {
		be.Close()
		return nil, &errUsage{err}
	}
	return d, nil
}

func (e *env) ortOptions(c config) ort.Options {
	return ort.Options{Library: c.ORTLibrary, Getenv: e.getenv, IntraOpThreads: c.Threads}
}

func (e *env) openBackend(c config, kind string, b *models.Bundle) (cwruntime.Backend, error) {
	be, err := callwatch.OpenBackend(kind, b, e.ortOptions(c),
		func(msg string) { fmt.Fprintf(e.stderr, "callwatch: %s\n", msg) })
	if err != nil {
		return nil, &errUsage{fmt.Errorf("%s backend for %s: %w", kind, b.Dir, err)}
	}
	return be, nil
}
