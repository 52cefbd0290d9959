// Command callwatch classifies Korean call transcripts as voice phishing or
// normal. Run `callwatch help` for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runEnviron(ctx, os.Args[1:], os.Getenv, os.Environ, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}
