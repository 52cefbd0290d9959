package main

import (
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
