// Package corpus embeds the project's own training corpus (base dialogues,
// slot lists and named sets of dialogues), for `callwatch train --mix-corpus`
// from the binary alone.
package corpus

import "embed"

// FS holds base/{phishing,normal}/*.txt, slots/*.txt and sets/*.txt.
//
//go:embed base slots sets
var FS embed.FS

// DefaultSet is the set of base dialogues the shipped model trains on
// (scripts/make-model.sh's CORPUS_SET), relative to FS: every dialogue except
// most of the legitimate calls that talk about scams, which taught that scam
// words are normal (scripts/README.md, round 5).
const DefaultSet = "sets/v0.6-hard10.txt"

// DefaultRegisterShift is the share of generated calls the shipped model's
// corpus moves one speech level up or down (scripts/make-model.sh's
// REGISTER_SHIFT, gen.py --register-shift), as a gen.py argument.
const DefaultRegisterShift = "0"
