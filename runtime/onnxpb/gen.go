// Package onnxpb holds Go types generated from onnx.proto (ONNX 1.12, as
// shipped by Debian's python3-onnx), so that the pure-Go backend can read
// model files without cgo.
//
// onnx.pb.go is committed: building never needs protoc. To regenerate after
// replacing onnx.proto (needs protoc, e.g. Debian's protobuf-compiler, and
// `go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12`):
//
//	go generate ./runtime/onnxpb
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/callwatch/callwatch/runtime/onnxpb onnx.proto
