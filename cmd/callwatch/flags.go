package main

import "github.com/spf13/pflag"

// flagSet wraps pflag.FlagSet so commands can add their own flags.
type flagSet struct{ *pflag.FlagSet }
