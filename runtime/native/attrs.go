package native

import (
	"fmt"
	"sort"
	"strings"

	"github.com/callwatch/callwatch/runtime/onnxpb"
)

func attr(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	if a := attr(n, name); a != nil {
		return a.GetI()
	}
	return def
}

func attrFloat(n *onnxpb.NodeProto, name string, def float32) float32 {
	if a := attr(n, name); a != nil {
		return a.GetF()
	}
	return def
}

func attrInts(n *onnxpb.NodeProto, name string) ([]int64, bool) {
	if a := attr(n, name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

func attrString(n *onnxpb.NodeProto, name, def string) string {
	if a := attr(n, name); a != nil {
		return string(a.GetS())
	}
	return def
}

// onlyAttrs rejects attributes a kernel does not implement, so that a
// model using them fails at load instead of computing something else.
func onlyAttrs(n *onnxpb.NodeProto, allowed ...string) error {
	for _, a := range n.GetAttribute() {
		if !contains(allowed, a.GetName()) {
			return fmt.Errorf("unsupported attribute %q", a.GetName())
		}
	}
	return nil
}

func supportedList() string {
	names := make([]string, 0, len(builders))
	for k := range builders {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
