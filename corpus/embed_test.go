package corpus

import (
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The --mix-corpus set and make-model.sh's default CORPUS_SET are one choice:
// a user mixing in the project's corpus gets what the shipped model saw.
func TestDefaultSetIsMakeModels(t *testing.T) {
	src, err := os.ReadFile("../scripts/make-model.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`CORPUS_SET="\$\{CORPUS_SET-corpus/([^}]+)\}"`).FindSubmatch(src)
	if m == nil {
		t.Fatal("scripts/make-model.sh: no CORPUS_SET default found")
	}
	if string(m[1]) != DefaultSet {
		t.Fatalf("make-model.sh trains on corpus/%s, DefaultSet is %s", m[1], DefaultSet)
	}
	r := regexp.MustCompile(`REGISTER_SHIFT="\$\{REGISTER_SHIFT:-([0-9.]+)\}"`).FindSubmatch(src)
	if r == nil {
		t.Fatal("scripts/make-model.sh: no REGISTER_SHIFT default found")
	}
	if string(r[1]) != DefaultRegisterShift {
		t.Fatalf("make-model.sh shifts %s of the calls' speech level, DefaultRegisterShift is %s", r[1], DefaultRegisterShift)
	}
	b, err := fs.ReadFile(FS, DefaultSet)
	if err != nil {
		t.Fatalf("DefaultSet is not embedded: %v", err)
	}
	ids := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			ids++
		}
	}
	if ids < 3000 {
		t.Fatalf("%s lists %d dialogues, want the v0.6 set's 3,935", DefaultSet, ids)
	}
}
