// Package release holds no code: its test runs `make release` (scripts/release.sh)
// into a temporary directory and checks what a user downloads — SHA256SUMS,
// each binary's architecture and linking, the onnxruntime archives — and runs
// the linux/amd64 binaries, copied out of the repository, with the embedded model.
package release
