// Package deploy holds how callwatch serve is packaged and run: the
// multi-stage Containerfile (a static native-only image and an onnxruntime
// image) and the Kubernetes manifests under k8s/. It has no code; its tests
// decode every manifest strictly with the Kubernetes API types and check
// them, and the Containerfile, against the server's routes, the config keys
// of the code and the Makefile's builds.
package deploy
