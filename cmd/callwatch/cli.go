package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// rootLong is the top-level help after the one-line summary: what the
// command list does not say (configuration, exit codes).
const rootLong = `callwatch — Korean voice-phishing (보이스피싱) detection on call transcripts.

Configuration (highest first): flags > CALLWATCH_* environment variables >
callwatch.yaml (in ., then $XDG_CONFIG_HOME/callwatch, or --config FILE) > defaults.
Keys: model, backend, batch, threads, window, ort.library, stream.* and server.*
(see "callwatch serve --help"); a key's environment variable is CALLWATCH_ + the
key upper-cased with "." as "_" (each flag's help names it). Durations take a
unit (10s, 500ms); unknown keys in the file are an error, unknown CALLWATCH_*
variables a warning.

Exit codes: 0 ok (help included); 1 some records failed, or parity above
tolerance; 2 usage, configuration, model or library error; 130 interrupted.`

// newRootCmd builds the command tree for one run. Every command reads its
// settings and writes through e, and the tree is built afresh per run, so
// nothing outlives it (tests run many in one process).
func (e *env) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "callwatch [command]",
		Short: "Korean voice-phishing detection on call transcripts",
		Long:  rootLong,
		// Errors are printed once, by env.execute, with where the usage
		// is; cobra would print them again with the whole usage.
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          unknownCommand,
		RunE: func(cmd *cobra.Command, args []string) error {
			if v, _ := cmd.Flags().GetBool("version"); v {
				return e.runVersion(cmd.Flags())
			}
			// No command: the usage goes where errors go, and the exit is 2,
			// since a script that runs a bare callwatch made a mistake.
			cmd.SetOut(e.stderr)
			_ = cmd.Usage()
			return usagef("no command given")
		},
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.PersistentFlags().String("config", "", "config file (default: ./callwatch.yaml, then $XDG_CONFIG_HOME/callwatch/callwatch.yaml) [env CALLWATCH_CONFIG]")
	root.Flags().Bool("version", false, "print version information as JSON (same as the version command)")
	root.SetFlagErrorFunc(flagError)
	root.AddGroup(commandGroups()...)
	for _, c := range []*cobra.Command{e.classifyCmd(), e.streamCmd(), e.serveCmd(), e.evalCmd()} {
		c.GroupID = "score"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{e.tokenizeCmd(), e.parityCmd(), e.trainCmd(), e.calibrateCmd(), e.vocabCmd()} {
		c.GroupID = "model"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{e.versionCmd(), e.manCmd()} {
		c.GroupID = "other"
		root.AddCommand(c)
	}
	root.SetHelpCommand(helpCmd())
	root.SetHelpCommandGroupID("other")
	root.SetCompletionCommandGroupID("other")
	root.SetUsageFunc(usage)
	// Made now rather than inside Execute, so the walk below reaches it.
	root.InitDefaultCompletionCmd()
	walk(root, func(c *cobra.Command) {
		c.DisableAutoGenTag = true // man pages stay the same from run to run
		c.SuggestionsMinimumDistance = 2
		// Now, not when the command runs: "help CMD" and the man pages
		// list -h/--help as "CMD --help" does.
		c.InitDefaultHelpFlag()
		c.Flags().SortFlags = false
		completeKeyValues(c)
		if c.HasSubCommands() && c != root && c.Run == nil && c.RunE == nil {
			// A group such as completion: a missing or unknown
			// subcommand is a usage error, with a suggestion.
			c.Args = unknownCommand
			c.RunE = func(cmd *cobra.Command, args []string) error {
				return cmdlinef("%s needs a subcommand: %s", cmd.CommandPath(), strings.Join(subcommandNames(cmd), ", "))
			}
		}
		if c.Args != nil {
			c.Args = usageArgs(c.Args)
		}
	})
	return root
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}

func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}

// unknownCommand is the positional check of commands that group others: an
// argument is an unknown subcommand, named with the closest real ones.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &errCommandLine{err: errors.New(msg), help: cmd.CommandPath()}
}

// usageArgs makes a positional-argument check's error a usage error (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			var cl *errCommandLine
			if errors.As(err, &cl) {
				return err
			}
			return &errCommandLine{err: err}
		}
		return nil
	}
}

// noArgs refuses positional arguments, naming the command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cmdlinef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// flagError makes a flag error a usage error, with the closest flag when
// the flag is unknown ("--bacth": did you mean --batch?).
func flagError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if s := closestFlag(cmd, name); s != "" {
			return cmdlinef("%s; did you mean --%s?", msg, s)
		}
	}
	return &errCommandLine{err: err}
}

// closestFlag is the flag of cmd nearest to name by edit distance (at most
// 2, or a prefix), or "".
func closestFlag(cmd *cobra.Command, name string) string {
	best, bestD := "", 3
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// helpCmd is "help [command]": the command's help on stdout, exit 0; an
// unknown topic is a usage error with a suggestion, not the top-level help.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help prints the help of any command: callwatch help classify is callwatch classify --help.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, s := range cmd.Commands() {
				if s.IsAvailableCommand() && strings.HasPrefix(s.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target := c.Root()
			for _, a := range args {
				next, _, err := target.Find([]string{a})
				if err != nil || next == target || next.Name() == "__complete" {
					return unknownCommand(target, []string{a})
				}
				target = next
			}
			return target.Help()
		},
	}
}

// manCmd writes man pages generated from the command tree.
func (e *env) manCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "man [--dir DIR]",
		Short: "Write man pages: callwatch(1) on stdout, or one page per command into --dir",
		Long: `man writes the manual pages generated from this binary's own commands and flags.
Without --dir, callwatch(1) goes to stdout (callwatch man | man -l -); with it, one
page per command (callwatch.1, callwatch-classify.1, ...) is written into DIR,
which is made if missing. The date is $SOURCE_DATE_EPOCH's when set, else the
build's commit time, so the pages are reproducible.`,
		Args: noArgs,
	}
	dir := cmd.Flags().String("dir", "", "directory to write one page per command into")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		date, err := e.manDate()
		if err != nil {
			return err
		}
		header := &doc.GenManHeader{Title: "CALLWATCH", Section: "1", Source: "callwatch " + programVersion(), Manual: "callwatch manual", Date: &date}
		root := cmd.Root()
		if *dir == "" {
			if err := doc.GenMan(root, header, e.stdout); err != nil {
				return fmt.Errorf("writing man page: %w", err)
			}
			return nil
		}
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return usagef("--dir: %v", err)
		}
		if err := doc.GenManTree(root, header, *dir); err != nil {
			return fmt.Errorf("writing man pages: %w", err)
		}
		pages, _ := filepath.Glob(filepath.Join(*dir, "*.1"))
		fmt.Fprintf(e.stderr, "callwatch: wrote %d man pages to %s\n", len(pages), *dir)
		return nil
	}
	return cmd
}

// manDate is the date man pages carry: $SOURCE_DATE_EPOCH (reproducible
// builds), else the commit time from build info, else now.
func (e *env) manDate() (time.Time, error) {
	if s := e.getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, usagef("SOURCE_DATE_EPOCH must be seconds since 1970, got %q", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i := slices.IndexFunc(bi.Settings, func(s debug.BuildSetting) bool { return s.Key == "vcs.time" })
		if i >= 0 {
			if t, err := time.Parse(time.RFC3339, bi.Settings[i].Value); err == nil {
				return t, nil
			}
		}
	}
	return time.Now().UTC(), nil
}

// commandGroups are the sections of the top-level help.
func commandGroups() []*cobra.Group {
	return []*cobra.Group{
		{ID: "score", Title: "Scoring:"},
		{ID: "model", Title: "Models and training:"},
		{ID: "other", Title: "Other:"},
	}
}

// usage writes a command's usage: cobra's layout, with flags as
// flagUsages renders them.
func usage(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n  %s <command> [flags]", c.CommandPath())
	} else if c.Runnable() {
		fmt.Fprintf(&b, "\n  %s", c.UseLine())
	}
	if c.HasExample() {
		fmt.Fprintf(&b, "\n\nExamples:\n%s", c.Example)
	}
	if c.HasAvailableSubCommands() {
		pad := 0
		for _, s := range c.Commands() {
			pad = max(pad, len(s.Name()))
		}
		line := func(s *cobra.Command) {
			fmt.Fprintf(&b, "\n  %-*s  %s", pad, s.Name(), s.Short)
		}
		shown := map[*cobra.Command]bool{}
		for _, g := range c.Groups() {
			fmt.Fprintf(&b, "\n\n%s", g.Title)
			for _, s := range c.Commands() {
				if s.GroupID == g.ID && (s.IsAvailableCommand() || s.Name() == "help") {
					line(s)
					shown[s] = true
				}
			}
		}
		first := true
		for _, s := range c.Commands() {
			if !shown[s] && (s.IsAvailableCommand() || s.Name() == "help") {
				if first {
					b.WriteString("\n\nCommands:")
					first = false
				}
				line(s)
			}
		}
	}
	if c.HasAvailableLocalFlags() {
		fmt.Fprintf(&b, "\n\nFlags:\n%s", flagUsages(c.LocalFlags()))
	}
	if c.HasAvailableInheritedFlags() {
		fmt.Fprintf(&b, "\n\nGlobal Flags:\n%s", flagUsages(c.InheritedFlags()))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nRun \"%s <command> --help\" (or \"%s help <command>\") for a command's flags.", c.CommandPath(), c.Root().Name())
	}
	b.WriteString("\n")
	_, err := io.WriteString(c.OutOrStderr(), b.String())
	return err
}

// flagUsages lists flags one per line: "--name type   help (default x)".
// Unlike pflag's own listing, a bool flag reads --name (not
// --name[=true|false]) and help text is wrapped under its column.
func flagUsages(fs *pflag.FlagSet) string {
	type row struct{ left, help string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		if t := flagTypeName(f); t != "" {
			left += " " + t
		}
		help := f.Usage
		if d := flagDefault(f); d != "" {
			help += " (default " + d + ")"
		}
		rows = append(rows, row{left, help})
		width = max(width, len(left))
	})
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%-*s   ", width, r.left)
		b.WriteString(wrap(r.help, width+3, 100))
	}
	return b.String()
}

// flagTypeName is the word shown after a flag for its value ("" for bools).
func flagTypeName(f *pflag.Flag) string {
	switch t := f.Value.Type(); t {
	case "bool":
		return ""
	case "int64", "int32":
		return "int"
	case "float64":
		return "float"
	case "stringArray":
		return "string"
	default:
		return t
	}
}

// flagDefault is a flag's default as help shows it, "" when it is the
// zero value (nothing worth saying).
func flagDefault(f *pflag.Flag) string {
	switch d := f.DefValue; {
	case d == "", d == "false", d == "0", d == "0s", d == "[]":
		return ""
	case f.Value.Type() == "string":
		return strconv.Quote(d)
	default:
		return d
	}
}

// wrap breaks s at spaces so that lines end before col, continuing lines at
// indent.
func wrap(s string, indent, col int) string {
	var words []string
	for _, w := range strings.Fields(s) {
		// "[env NAME]" stays on one line.
		if k := len(words) - 1; k >= 0 && words[k] == "[env" {
			words[k] += " " + w
			continue
		}
		words = append(words, w)
	}
	var b strings.Builder
	n := indent
	for i, w := range words {
		if i > 0 {
			if n+1+len(w) > col && n > indent {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				n = indent
			} else {
				b.WriteString(" ")
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
