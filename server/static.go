package server

import "embed"

// staticFiles is the live call monitor page; it loads nothing from the
// network.
//
//go:embed static
var staticFiles embed.FS
