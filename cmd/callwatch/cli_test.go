package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commandFlags parses args with the flags of the command name, as a run
// would (persistent flags such as --config included), and returns them.
func commandFlags(e *env, name string, args []string) (*pflag.FlagSet, error) {
	root := e.newRootCmd()
	cmd, _, err := root.Find([]string{name})
	if err != nil {
		return nil, err
	}
	if err := cmd.ParseFlags(args); err != nil {
		return nil, err
	}
	return cmd.Flags(), nil
}

// Every flag that sets a config key is the table's: same type of default,
// same help, and its environment variable named; every key with a flag is
// reachable from some command; no help text holds a backtick (pflag would
// show the quoted word as the flag's type).
func TestFlagsFromKeyTable(t *testing.T) {
	root := (&env{getenv: func(string) string { return "" }}).newRootCmd()
	used := map[string]bool{}
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: help has a backtick: %q", c.CommandPath(), f.Name, f.Usage)
			}
			for _, k := range configKeys {
				if k.flag != f.Name {
					continue
				}
				used[k.key] = true
				if want := k.usage + " [env " + envName(k.key) + "]"; f.Usage != want {
					t.Errorf("%s --%s: help %q, want the table's %q", c.CommandPath(), f.Name, f.Usage, want)
				}
				if f.DefValue != k.defString() {
					t.Errorf("%s --%s: default %q, want the table's %q", c.CommandPath(), f.Name, f.DefValue, k.defString())
				}
			}
		})
		for _, s := range c.Commands() {
			visit(s)
		}
	}
	visit(root)
	for _, k := range configKeys {
		if k.flag != "" && !used[k.key] {
			t.Errorf("config key %s has flag --%s, which no command defines", k.key, k.flag)
		}
	}
}
