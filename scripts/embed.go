// Package scripts embeds the project's Python training scripts, so that
// `callwatch train` can run them from the binary alone (with python3 and
// torch installed) and always runs the scripts of its own version.
package scripts

import "embed"

// FS holds the training, export and corpus-generator scripts, and
// make-model.sh (the recipe's one source: its TRAIN_ARGS).
//
//go:embed *.py corpus/*.py make-model.sh
var FS embed.FS
