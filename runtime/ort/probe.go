//go:build !noort

package ort

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <stdint.h>

// Mirrors OrtApiBase from onnxruntime_c_api.h; the first two members are
// stable across all releases, which is what makes probing any version safe.
typedef struct {
	const void* (*GetApi)(uint32_t version);
	const char* (*GetVersionString)(void);
} cwOrtApiBase;

typedef cwOrtApiBase* (*cwGetApiBaseFn)(void);

// cw_probe opens path and returns the library's version string, or NULL with
// *err set. The handle stays open: onnxruntime_go opens the same file next
// and dlopen reference-counts it.
static const char* cw_probe(const char* path, const char** err) {
	void* h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) {
		*err = dlerror();
		return NULL;
	}
	cwGetApiBaseFn fn = (cwGetApiBaseFn)dlsym(h, "OrtGetApiBase");
	if (fn == NULL) {
		*err = "the file has no OrtGetApiBase symbol, so it is not an onnxruntime library";
		dlclose(h);
		return NULL;
	}
	cwOrtApiBase* base = fn();
	if (base == NULL || base->GetVersionString == NULL) {
		*err = "OrtGetApiBase returned nothing";
		return NULL;
	}
	return base->GetVersionString();
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// probeLibrary loads the shared library at path and returns its onnxruntime
// version (e.g. "1.24.3"). It never touches onnxruntime_go's global state, so
// a wrong library can be reported before InitializeEnvironment fails with an
// opaque "Error setting ORT API base".
func probeLibrary(path string) (string, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	v := C.cw_probe(cpath, &cerr)
	if v == nil {
		msg := "unknown error"
		if cerr != nil {
			msg = C.GoString(cerr)
		}
		return "", errors.New(msg)
	}
	return C.GoString(v), nil
}

// versionAtLeast reports whether a dotted version is >= major.minor.
func versionAtLeast(v string, major, minor int) (bool, error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false, fmt.Errorf("unparseable onnxruntime version %q", v)
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("unparseable onnxruntime version %q", v)
	}
	return ma > major || (ma == major && mi >= minor), nil
}
