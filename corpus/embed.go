// Package corpus embeds the project's own training corpus (base dialogues
// and slot lists), for `callwatch train --mix-corpus` from the binary alone.
package corpus

import "embed"

// FS holds base/{phishing,normal}/*.txt and slots/*.txt.
//
//go:embed base slots
var FS embed.FS
