//go:build !noort

package ort

// Test hooks.
var (
	ProbeForTest          = probeLibrary
	VersionAtLeastForTest = versionAtLeast
)

// SharedArenaForTest reports whether Init registered the environment's arena.
func SharedArenaForTest() bool {
	env.Lock()
	defer env.Unlock()
	return env.sharedArena
}
