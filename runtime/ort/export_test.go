//go:build !noort

package ort

// Test hooks.
var (
	ProbeForTest          = probeLibrary
	VersionAtLeastForTest = versionAtLeast
)
