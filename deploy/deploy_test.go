package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/server"
)

const root = ".." // the repository

// ---- what the code says ----

var methodPath = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/\S*)$`)

// goFiles parses the non-test Go files of dir.
func goFiles(t *testing.T, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*ast.File
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// serverRoutes is the set of "METHOD /path" patterns server/ registers
// (the first argument of its handle/mux.Handle calls in routes()).
func serverRoutes(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, f := range goFiles(t, filepath.Join(root, "server")) {
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && len(call.Args) > 0 {
				if s, ok := stringLit(call.Args[0]); ok && methodPath.MatchString(s) {
					out[s] = true
				}
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("found no routes in server/: the route parser no longer sees routes()")
	}
	return out
}

var (
	envLit    = regexp.MustCompile(`^CALLWATCH_[A-Z0-9_]+$`)
	configKey = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
)

// configEnv is every CALLWATCH_* variable the code reads: the literal names
// anywhere in the module's non-test code (CALLWATCH_CONFIG,
// CALLWATCH_ORT_LIBRARY, ...) and, for every config key of the CLI's key
// tables (the first field of each row, such as {"server.state_keys", ""},
// of cmd/callwatch's table literals), "CALLWATCH_" + the key upper-cased
// with "." as "_" — the rule cmd/callwatch applies.
func configEnv(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules", "build", "bin", ".ort":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := stringLit(asExpr(n)); ok && envLit.MatchString(s) {
				out[s] = path
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	derives := false
	for _, f := range goFiles(t, filepath.Join(root, "cmd", "callwatch")) {
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := stringLit(asExpr(n)); ok && (s == "CALLWATCH_" || s == "CALLWATCH") {
				derives = true
			}
			// A row of a key table: an element of a slice or map literal
			// (its type elided) whose first field is the key.
			cl, ok := n.(*ast.CompositeLit)
			if !ok || cl.Type != nil || len(cl.Elts) < 2 {
				return true
			}
			first := cl.Elts[0]
			if kv, ok := first.(*ast.KeyValueExpr); ok {
				first = kv.Value
			}
			if s, ok := stringLit(first); ok && configKey.MatchString(s) {
				name := "CALLWATCH_" + strings.ToUpper(strings.ReplaceAll(s, ".", "_"))
				if _, seen := out[name]; !seen {
					out[name] = "config key " + s
				}
			}
			return true
		})
	}
	if !derives {
		t.Fatal(`cmd/callwatch no longer builds env names from "CALLWATCH_" + key: update configEnv to the new rule`)
	}
	for _, must := range []string{"CALLWATCH_MODEL", "CALLWATCH_SERVER_ADDR"} {
		if _, ok := out[must]; !ok {
			t.Fatalf("configEnv found %d names, not %s: the parser no longer sees the config keys", len(out), must)
		}
	}
	return out
}

func asExpr(n ast.Node) ast.Expr {
	e, _ := n.(ast.Expr)
	return e
}

// stateKeysEnv is the variable the code takes the state-token keys from:
// the several-keys form when the code has it, else the single key.
func stateKeysEnv(t *testing.T, known map[string]string) string {
	t.Helper()
	var multi, single []string
	for name := range known {
		switch {
		case strings.HasSuffix(name, "_STATE_KEYS"):
			multi = append(multi, name)
		case strings.HasSuffix(name, "_STATE_KEY"):
			single = append(single, name)
		}
	}
	switch {
	case len(multi) == 1:
		return multi[0]
	case len(multi) == 0 && len(single) == 1:
		return single[0]
	}
	t.Fatalf("cannot tell the state key variable from the code: %v %v", multi, single)
	return ""
}

// apiKeysEnv is the variables that carry API keys or their file, if the
// code has any.
func apiKeysEnv(known map[string]string) []string {
	var out []string
	for name := range known {
		if strings.Contains(name, "API_KEY") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// ---- the manifests ----

type manifest struct {
	file string
	kind string
	obj  any
}

// loadManifests decodes every YAML document under k8s/ strictly (unknown
// and duplicate fields are errors) into its Kubernetes API type.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			t.Errorf("%s: not YAML; only manifests belong under k8s/", path)
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range splitYAML(data) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Errorf("%s document %d: %v", path, i+1, err)
				continue
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "v1 Secret":
				obj = &corev1.Secret{}
			case "autoscaling/v2 HorizontalPodAutoscaler":
				obj = &autoscalingv2.HorizontalPodAutoscaler{}
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			default:
				t.Errorf("%s document %d: %q %q is not a kind this test knows; add it to loadManifests", path, i+1, tm.APIVersion, tm.Kind)
				continue
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): strict decoding: %v", path, i+1, tm.Kind, err)
				continue
			}
			out = append(out, manifest{file: path, kind: tm.Kind, obj: obj})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// splitYAML splits a YAML stream at its "---" lines, dropping documents
// that hold only comments.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		content := false
		for _, l := range strings.Split(cur.String(), "\n") {
			if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
				content = true
			}
		}
		if content {
			docs = append(docs, slices.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == "---" {
			flush()
			continue
		}
		cur.WriteString(sc.Text() + "\n")
	}
	flush()
	return docs
}

type objects struct {
	deploy  *appsv1.Deployment
	svc     *corev1.Service
	hpa     *autoscalingv2.HorizontalPodAutoscaler
	pdb     *policyv1.PodDisruptionBudget
	secrets []*corev1.Secret
}

func loadObjects(t *testing.T) objects {
	t.Helper()
	var o objects
	count := map[string]int{}
	for _, m := range loadManifests(t) {
		count[m.kind]++
		switch v := m.obj.(type) {
		case *appsv1.Deployment:
			o.deploy = v
		case *corev1.Service:
			o.svc = v
		case *autoscalingv2.HorizontalPodAutoscaler:
			o.hpa = v
		case *policyv1.PodDisruptionBudget:
			o.pdb = v
		case *corev1.Secret:
			if !strings.Contains(m.file, "example") {
				t.Errorf("%s: a Secret with its values belongs in no repository; keep it under k8s/example/ with placeholders", m.file)
			}
			o.secrets = append(o.secrets, v)
		}
	}
	for _, k := range []string{"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} {
		if count[k] != 1 {
			t.Fatalf("k8s/ has %d %s manifests, want 1", count[k], k)
		}
	}
	return o
}

// container is the Deployment's callwatch container.
func container(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "callwatch" {
			return c
		}
	}
	t.Fatal(`the Deployment has no container "callwatch"`)
	return nil
}

func envOf(c *corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

func containerPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

// envDuration is a Go duration the Deployment sets.
func envDuration(t *testing.T, env map[string]corev1.EnvVar, name string) time.Duration {
	t.Helper()
	e, ok := env[name]
	if !ok {
		t.Fatalf("the Deployment does not set %s; set it, so the grace period can be checked against it", name)
	}
	d, err := time.ParseDuration(e.Value)
	if err != nil {
		t.Fatalf("%s=%q: %v (the server reads Go durations)", name, e.Value, err)
	}
	return d
}

// Go runtime variables a manifest may set besides the config's.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true}

func TestManifests(t *testing.T) {
	o := loadObjects(t)
	known := configEnv(t)
	routes := serverRoutes(t)
	d := o.deploy
	pod := d.Spec.Template
	c := container(t, d)
	env := envOf(c)

	t.Run("selectors", func(t *testing.T) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("the Deployment's selector %v does not select its pods %v (%v)", d.Spec.Selector, pod.Labels, err)
		}
		if len(o.svc.Spec.Selector) == 0 || !labels.SelectorFromSet(o.svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			t.Errorf("the Service's selector %v does not select the pods %v", o.svc.Spec.Selector, pod.Labels)
		}
		psel, err := metav1.LabelSelectorAsSelector(o.pdb.Spec.Selector)
		if err != nil || psel.Empty() || !psel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("the PodDisruptionBudget's selector %v does not select the pods %v (%v)", o.pdb.Spec.Selector, pod.Labels, err)
		}
		ref := o.hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("the HPA scales %s %s %s, not the Deployment %s", ref.APIVersion, ref.Kind, ref.Name, d.Name)
		}
	})

	t.Run("ports", func(t *testing.T) {
		addr, ok := env["CALLWATCH_SERVER_ADDR"]
		if !ok {
			t.Fatal("the Deployment does not set CALLWATCH_SERVER_ADDR (the server listens on 127.0.0.1 by default)")
		}
		host, port, err := net.SplitHostPort(addr.Value)
		if err != nil {
			t.Fatalf("CALLWATCH_SERVER_ADDR=%q: %v", addr.Value, err)
		}
		if host != "0.0.0.0" && host != "" && host != "::" {
			t.Errorf("CALLWATCH_SERVER_ADDR=%q: a pod must listen on all interfaces for probes and the Service", addr.Value)
		}
		http := containerPort(t, c, "http")
		if strconv.Itoa(int(http)) != port {
			t.Errorf("container port http is %d, the server listens on %s", http, port)
		}
		for _, p := range o.svc.Spec.Ports {
			if p.TargetPort.String() != "http" && p.TargetPort.IntValue() != int(http) {
				t.Errorf("Service port %s targets %s, not the container's http port", p.Name, p.TargetPort.String())
			}
		}
		if a := pod.Annotations["prometheus.io/port"]; a != "" && a != port {
			t.Errorf("prometheus.io/port %s, the server listens on %s", a, port)
		}
		if p := pod.Annotations["prometheus.io/path"]; p != "" && !routes["GET "+p] {
			t.Errorf("prometheus.io/path %s is not a GET route of the server", p)
		}
	})

	t.Run("probes", func(t *testing.T) {
		check := func(what string, p *corev1.Probe, want string) {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("no HTTP %s probe", what)
				return
			}
			if !routes["GET "+p.HTTPGet.Path] {
				t.Errorf("%s probe path %s is not a GET route of the server (server/routes.go)", what, p.HTTPGet.Path)
			}
			if p.HTTPGet.Path != want {
				t.Errorf("%s probe on %s, want the v2 health route %s", what, p.HTTPGet.Path, want)
			}
			if p.HTTPGet.Port.String() != "http" && p.HTTPGet.Port.IntValue() != int(containerPort(t, c, "http")) {
				t.Errorf("%s probe on port %s, not the http port", what, p.HTTPGet.Port.String())
			}
		}
		check("liveness", c.LivenessProbe, "/v2/health/live")
		check("readiness", c.ReadinessProbe, "/v2/health/ready")
		if !routes["GET /v2/health/live"] || !routes["GET /v2/health/ready"] {
			t.Errorf("the server no longer has the v2 health routes: %v", routes)
		}
		// Readiness must notice a drain well within drain_delay.
		drain := envDuration(t, env, "CALLWATCH_SERVER_DRAIN_DELAY")
		if r := c.ReadinessProbe; r != nil {
			notice := time.Duration(r.PeriodSeconds*r.FailureThreshold) * time.Second
			if notice >= drain {
				t.Errorf("readiness notices a drain after up to %s, not within drain_delay %s", notice, drain)
			}
		}
	})

	t.Run("env", func(t *testing.T) {
		for _, e := range c.Env {
			switch {
			case goRuntimeEnv[e.Name]:
			case strings.HasPrefix(e.Name, "CALLWATCH_"):
				if _, ok := known[e.Name]; !ok {
					t.Errorf("env %s: the code reads no such variable (config keys of cmd/callwatch, CALLWATCH_* literals)", e.Name)
				}
			default:
				t.Errorf("env %s: neither a callwatch setting nor a Go runtime variable", e.Name)
			}
			if e.Value != "" && e.ValueFrom != nil {
				t.Errorf("env %s has both value and valueFrom", e.Name)
			}
		}
		secretRefs := map[string][]string{} // secret → keys
		for _, e := range c.Env {
			secret := strings.Contains(e.Name, "KEY") || strings.Contains(e.Name, "TOKEN") || strings.Contains(e.Name, "PASSWORD")
			ref := e.ValueFrom
			if secret && (ref == nil || ref.SecretKeyRef == nil) {
				t.Errorf("env %s carries a secret: take it from a Secret (valueFrom.secretKeyRef), not a literal", e.Name)
			}
			if ref != nil && ref.SecretKeyRef != nil {
				if ref.SecretKeyRef.Optional != nil && *ref.SecretKeyRef.Optional {
					t.Errorf("env %s: the secret is optional; a replica without keys must not start", e.Name)
				}
				secretRefs[ref.SecretKeyRef.Name] = append(secretRefs[ref.SecretKeyRef.Name], ref.SecretKeyRef.Key)
			}
		}
		want := stateKeysEnv(t, known)
		if e, ok := env[want]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			t.Errorf("the state keys must come from a Secret in %s (the variable the code reads)", want)
		}
		for name := range env {
			if strings.Contains(name, "STATE_KEY") && name != want {
				t.Errorf("env %s: the code's state key variable is %s", name, want)
			}
		}
		for _, name := range apiKeysEnv(known) {
			if strings.HasSuffix(name, "_FILE") {
				continue // the file form is an alternative to the variable
			}
			if e, ok := env[name]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("the code takes API keys from %s: set it from a Secret (k8s/deployment.yaml has the block, commented out, for callwatch-keys/api-keys; add api-keys to k8s/example/secret.yaml)", name)
			}
		}
		// The example Secret holds every key the Deployment reads.
		for name, keys := range secretRefs {
			i := slices.IndexFunc(o.secrets, func(s *corev1.Secret) bool { return s.Name == name })
			if i < 0 {
				t.Errorf("Secret %s is referenced but k8s/example/ has no example of it", name)
				continue
			}
			s := o.secrets[i]
			for _, k := range keys {
				_, inData := s.Data[k]
				_, inString := s.StringData[k]
				if !inData && !inString {
					t.Errorf("the example Secret %s has no key %q", name, k)
				}
			}
		}
	})

	t.Run("security", func(t *testing.T) {
		ps := pod.Spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
			t.Errorf("pod securityContext must run as a non-root uid: %+v", ps)
		}
		if ps != nil && ps.RunAsUser != nil {
			if uid := imageUser(t); uid != *ps.RunAsUser {
				t.Errorf("pod runs as uid %d, the images as %d", *ps.RunAsUser, uid)
			}
		}
		cs := c.SecurityContext
		if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem {
			t.Error("the container must have readOnlyRootFilesystem: true")
		}
		if cs == nil || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
			t.Error("the container must have allowPrivilegeEscalation: false")
		}
		if cs == nil || cs.Capabilities == nil || !slices.Contains(cs.Capabilities.Drop, "ALL") {
			t.Error("the container must drop ALL capabilities")
		}
		if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
			t.Error("the server never talks to the Kubernetes API: automountServiceAccountToken: false")
		}
	})

	t.Run("resources", func(t *testing.T) {
		req, lim := c.Resources.Requests, c.Resources.Limits
		cpu, mem, memLim := req[corev1.ResourceCPU], req[corev1.ResourceMemory], lim[corev1.ResourceMemory]
		if cpu.IsZero() {
			t.Error("no CPU request: the HPA's utilization target is a share of it")
		}
		// README: ~70 MB RSS under load, up to ~195 MB with the session
		// store full; the request covers the steady state, the limit the
		// worst case with room for GC.
		if mem.Cmp(resource.MustParse("160Mi")) < 0 {
			t.Errorf("memory request %s is under the measured RSS with a full session store (~145-195 MB)", mem.String())
		}
		if memLim.Cmp(resource.MustParse("256Mi")) < 0 || memLim.Cmp(mem) < 0 {
			t.Errorf("memory limit %s: want >= 256Mi (the measured peak is ~195 MB) and >= the request %s", memLim.String(), mem.String())
		}
		if e, ok := env["GOMEMLIMIT"]; ok {
			q, err := resource.ParseQuantity(strings.TrimSuffix(strings.TrimSuffix(e.Value, "B"), "i") + "i")
			if err != nil {
				t.Fatalf("GOMEMLIMIT=%q: %v", e.Value, err)
			}
			if q.Value() > memLim.Value()*9/10 {
				t.Errorf("GOMEMLIMIT %s leaves under 10%% of the memory limit %s for onnxruntime and the runtime", e.Value, memLim.String())
			}
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		drain := envDuration(t, env, "CALLWATCH_SERVER_DRAIN_DELAY")
		shutdown := envDuration(t, env, "CALLWATCH_SERVER_SHUTDOWN_TIMEOUT")
		grace := pod.Spec.TerminationGracePeriodSeconds
		if grace == nil || time.Duration(*grace)*time.Second < drain+shutdown+5*time.Second {
			t.Errorf("terminationGracePeriodSeconds %v must exceed drain_delay %s + shutdown_timeout %s (+5s), or in-flight requests are killed", grace, drain, shutdown)
		}
		if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Error("rolling updates should keep every replica until its successor is ready (maxUnavailable: 0)")
		}
	})

	t.Run("autoscaling", func(t *testing.T) {
		h := o.hpa.Spec
		if h.MinReplicas == nil || *h.MinReplicas < 2 || h.MaxReplicas < *h.MinReplicas {
			t.Errorf("HPA replicas %v..%d: want at least 2, so one replica can be drained", h.MinReplicas, h.MaxReplicas)
		}
		cpu := false
		for _, m := range h.Metrics {
			if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
				m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil {
				cpu = true
			}
		}
		if !cpu {
			t.Error("the HPA does not scale on CPU utilization")
		}
		if d.Spec.Replicas != nil && h.MinReplicas != nil && *d.Spec.Replicas < *h.MinReplicas {
			t.Errorf("Deployment replicas %d < HPA minReplicas %d", *d.Spec.Replicas, *h.MinReplicas)
		}
		p := o.pdb.Spec
		switch {
		case p.MaxUnavailable != nil:
			if p.MaxUnavailable.IntValue() < 1 {
				t.Error("PDB maxUnavailable < 1 blocks every node drain")
			}
		case p.MinAvailable != nil:
			if h.MinReplicas != nil && p.MinAvailable.IntValue() >= int(*h.MinReplicas) {
				t.Error("PDB minAvailable >= minReplicas blocks every node drain")
			}
		default:
			t.Error("the PDB sets neither maxUnavailable nor minAvailable")
		}
	})
}

// TestProbeRoutesAnswer: the liveness route answers while the model loads
// (a probe on it must not kill a loading pod) and readiness does not.
func TestProbeRoutesAnswer(t *testing.T) {
	o := loadObjects(t)
	c := container(t, o.deploy)
	s, err := server.NewServer(server.DefaultConfig(), server.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []struct {
		probe *corev1.Probe
		want  int
	}{{c.LivenessProbe, 200}, {c.ReadinessProbe, 503}} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", p.probe.HTTPGet.Path, nil))
		if rec.Code != p.want {
			t.Errorf("GET %s before the model loaded: %d, want %d", p.probe.HTTPGet.Path, rec.Code, p.want)
		}
	}
}

// ---- the Containerfile ----

type instruction struct {
	cmd, args string
}

type stage struct {
	name, from string
	ins        []instruction
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// env is the stage's ENV settings (KEY=VALUE form, values without spaces).
func (s stage) env() map[string]string {
	out := map[string]string{}
	for _, a := range s.all("ENV") {
		for _, kv := range strings.Fields(a) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[k] = v
			}
		}
	}
	return out
}

type copyIns struct {
	from string
	srcs []string
	dst  string
}

func (s stage) copies() []copyIns {
	var out []copyIns
	for _, a := range s.all("COPY") {
		var c copyIns
		var rest []string
		for _, f := range strings.Fields(a) {
			if v, ok := strings.CutPrefix(f, "--from="); ok {
				c.from = v
			} else if !strings.HasPrefix(f, "--") {
				rest = append(rest, f)
			}
		}
		if len(rest) >= 2 {
			c.srcs, c.dst = rest[:len(rest)-1], rest[len(rest)-1]
		}
		out = append(out, c)
	}
	return out
}

func parseContainerfile(t *testing.T) map[string]stage {
	t.Helper()
	data, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cur strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		s := strings.TrimSpace(l)
		if cur.Len() == 0 && (s == "" || strings.HasPrefix(s, "#")) {
			continue
		}
		if strings.HasSuffix(s, "\\") {
			cur.WriteString(strings.TrimSuffix(s, "\\") + " ")
			continue
		}
		cur.WriteString(s)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	stages := map[string]stage{}
	var order []string
	var st *stage
	for _, l := range lines {
		cmd, args, _ := strings.Cut(l, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			f := strings.Fields(args)
			if len(f) != 3 || !strings.EqualFold(f[1], "AS") {
				t.Fatalf("Containerfile: %q: name every stage (FROM image AS name)", l)
			}
			if st != nil {
				stages[st.name] = *st
			}
			st = &stage{name: f[2], from: f[0]}
			order = append(order, f[2])
			continue
		}
		if st == nil {
			if cmd != "ARG" {
				t.Fatalf("Containerfile: %q before the first FROM", l)
			}
			continue
		}
		st.ins = append(st.ins, instruction{cmd, strings.TrimSpace(args)})
	}
	if st != nil {
		stages[st.name] = *st
	}
	if len(order) == 0 || order[len(order)-1] != "native" {
		t.Errorf("Containerfile stages %v: the last (default) target should be the static native image", order)
	}
	return stages
}

// goBuild is a normalized `go build` command line: its environment
// assignments and its arguments, without the output path.
type goBuild struct {
	env  map[string]string
	args []string
}

func (g goBuild) String() string { return fmt.Sprintf("%v go %s", g.env, strings.Join(g.args, " ")) }

func parseGoBuild(cmd string, defaults map[string]string) (goBuild, bool) {
	f := strings.Fields(cmd)
	g := goBuild{env: map[string]string{}}
	for k, v := range defaults {
		g.env[k] = v
	}
	i := 0
	for ; i < len(f) && strings.Contains(f[i], "=") && !strings.HasPrefix(f[i], "-"); i++ {
		k, v, _ := strings.Cut(f[i], "=")
		g.env[k] = v
	}
	if i+1 >= len(f) || (f[i] != "go" && f[i] != "$(GO)") || f[i+1] != "build" {
		return g, false
	}
	rest := f[i+2:]
	for j := 0; j < len(rest); j++ {
		if rest[j] == "-o" {
			j++
			continue
		}
		if rest[j] == "&&" || rest[j] == ";" {
			break
		}
		g.args = append(g.args, rest[j])
	}
	return g, true
}

// makefileBuilds returns the Makefile's builds of ./cmd/callwatch: the
// cgo one (`make build`) and the noort one (`make test-noort`).
func makefileBuilds(t *testing.T) (cgo, noort goBuild) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	exp := regexp.MustCompile(`^export\s+(\w+)\s*:?=\s*(\S+)`)
	var found []goBuild
	for _, l := range strings.Split(string(data), "\n") {
		if m := exp.FindStringSubmatch(l); m != nil {
			defaults[m[1]] = m[2]
		}
		if !strings.HasPrefix(l, "\t") {
			continue
		}
		if g, ok := parseGoBuild(strings.TrimSpace(l), defaults); ok && slices.Contains(g.args, "./cmd/callwatch") {
			found = append(found, g)
		}
	}
	var okC, okN bool
	for _, g := range found {
		if slices.Contains(g.args, "noort") {
			noort, okN = g, true
		} else {
			cgo, okC = g, true
		}
	}
	if !okC || !okN {
		t.Fatalf("the Makefile's builds of ./cmd/callwatch are not the cgo and the noort one: %v", found)
	}
	return cgo, noort
}

func sameBuild(a, b goBuild) bool {
	return a.env["CGO_ENABLED"] == b.env["CGO_ENABLED"] && slices.Equal(a.args, b.args)
}

// imageUser is the uid both final images run as.
func imageUser(t *testing.T) int64 {
	t.Helper()
	stages := parseContainerfile(t)
	var uid int64 = -1
	for _, name := range []string{"native", "ort"} {
		users := stages[name].all("USER")
		if len(users) == 0 {
			t.Fatalf("stage %s sets no USER: it would run as root", name)
		}
		u, _, _ := strings.Cut(users[len(users)-1], ":")
		n, err := strconv.ParseInt(u, 10, 64)
		if err != nil || n == 0 {
			t.Fatalf("stage %s: USER %q: want a numeric non-root uid (Kubernetes' runAsNonRoot can only check a number)", name, users[len(users)-1])
		}
		if uid >= 0 && n != uid {
			t.Fatalf("the images run as different uids (%d, %d)", uid, n)
		}
		uid = n
	}
	return uid
}

func TestContainerfile(t *testing.T) {
	stages := parseContainerfile(t)
	known := configEnv(t)
	cgo, noort := makefileBuilds(t)
	modelSrc := "models/" + models.DefaultName
	if _, err := os.Stat(filepath.Join(root, modelSrc, models.CardFile)); err != nil {
		t.Fatalf("the shipped bundle: %v", err)
	}
	imageUser(t)
	o := loadObjects(t)
	podEnv := envOf(container(t, o.deploy))

	for _, tt := range []struct {
		target  string
		build   goBuild
		backend string
	}{{"native", noort, "native"}, {"ort", cgo, "ort"}} {
		t.Run(tt.target, func(t *testing.T) {
			st, ok := stages[tt.target]
			if !ok {
				t.Fatalf("no stage %q", tt.target)
			}
			if n := len(st.all("RUN")); n != 0 {
				t.Errorf("the final image runs %d RUN steps: build in a builder stage (the base has no shell)", n)
			}
			env := st.env()
			for k := range env {
				if _, ok := known[k]; !ok && strings.HasPrefix(k, "CALLWATCH_") {
					t.Errorf("ENV %s: the code reads no such variable", k)
				}
				if pe, ok := podEnv[k]; ok && pe.Value != env[k] {
					t.Logf("the Deployment overrides %s=%s with %q", k, env[k], pe.Value)
				}
			}
			if env["CALLWATCH_BACKEND"] != tt.backend {
				t.Errorf("CALLWATCH_BACKEND=%q, want %q", env["CALLWATCH_BACKEND"], tt.backend)
			}
			ep := st.all("ENTRYPOINT")
			var entry []string
			if len(ep) != 1 || json.Unmarshal([]byte(ep[0]), &entry) != nil || len(entry) == 0 {
				t.Fatalf("ENTRYPOINT %v: want the exec form with the binary", ep)
			}
			bin := entry[0]
			var binFrom, model, ortLib string
			for _, c := range st.copies() {
				switch {
				case c.dst == bin:
					binFrom = c.from
				case slices.Contains(c.srcs, modelSrc):
					model = c.dst
				case len(c.srcs) == 1 && strings.Contains(c.srcs[0], "libonnxruntime"):
					ortLib = c.dst
				}
			}
			if model == "" {
				t.Errorf("the model bundle %s is not copied into the image", modelSrc)
			} else if env["CALLWATCH_MODEL"] != model {
				t.Errorf("CALLWATCH_MODEL=%q, but the bundle is copied to %s", env["CALLWATCH_MODEL"], model)
			}
			if tt.target == "ort" {
				if ortLib == "" {
					t.Error("libonnxruntime is not copied into the ort image")
				} else if filepath.Dir(ortLib) != filepath.Dir(bin) && env["CALLWATCH_ORT_LIBRARY"] != ortLib {
					t.Errorf("libonnxruntime at %s: put it next to the binary or set CALLWATCH_ORT_LIBRARY", ortLib)
				}
				ortStage := ""
				for _, c := range st.copies() {
					if c.dst == ortLib {
						ortStage = c.from
					}
				}
				script := false
				for _, c := range stages[ortStage].copies() {
					script = script || slices.Contains(c.srcs, "scripts/setup-ort.sh")
				}
				runs := strings.Join(stages[ortStage].all("RUN"), "\n")
				if !script || !strings.Contains(runs, "setup-ort.sh") {
					t.Errorf("stage %q must install onnxruntime with scripts/setup-ort.sh (its pinned version and sha256)", ortStage)
				}
			} else if ortLib != "" {
				t.Error("the native image carries libonnxruntime")
			}
			b, ok := stages[binFrom]
			if !ok {
				t.Fatalf("the binary %s comes from %q, not a stage", bin, binFrom)
			}
			var builds []goBuild
			for _, r := range b.all("RUN") {
				if g, ok := parseGoBuild(r, nil); ok {
					builds = append(builds, g)
				}
			}
			if len(builds) != 1 || !sameBuild(builds[0], tt.build) {
				t.Errorf("stage %s builds %v; the Makefile builds this variant as %v", binFrom, builds, tt.build)
			}
		})
	}
}

// ---- the image layout, run ----

// TestImageServes runs what the native image runs: the binary built with
// the Containerfile's command, the files laid out by its COPY lines, its
// ENV and WORKDIR, the Deployment's args and env (the Secret's keys made up
// here, the address on loopback), and checks the probes, a request, and
// that SIGTERM drains within the grace period.
func TestImageServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it")
	}
	stages := parseContainerfile(t)
	st := stages["native"]
	o := loadObjects(t)
	c := container(t, o.deploy)
	dir := t.TempDir()
	rebase := func(p string) string {
		if strings.HasPrefix(p, "/") {
			return filepath.Join(dir, p)
		}
		return p
	}
	ep := st.all("ENTRYPOINT")
	var entry []string
	if len(ep) != 1 || json.Unmarshal([]byte(ep[0]), &entry) != nil {
		t.Fatal("ENTRYPOINT")
	}
	bin := rebase(entry[0])
	for _, cp := range st.copies() {
		switch {
		case cp.dst == entry[0]:
			var cmd string
			for _, r := range stages[cp.from].all("RUN") {
				if _, ok := parseGoBuild(r, nil); ok {
					cmd = r
				}
			}
			f := strings.Fields(cmd)
			var envs []string
			for len(f) > 0 && strings.Contains(f[0], "=") {
				envs, f = append(envs, f[0]), f[1:]
			}
			for i := range f {
				if i > 0 && f[i-1] == "-o" {
					f[i] = bin
				}
			}
			build := exec.Command(f[0], f[1:]...)
			build.Dir = root
			build.Env = append(os.Environ(), envs...)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
		case cp.from == "":
			for _, src := range cp.srcs {
				if err := os.CopyFS(rebase(cp.dst), os.DirFS(filepath.Join(root, src))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Read-only, as in the image.
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, _ := d.Info()
			os.Chmod(p, info.Mode()&0o555)
		}
		return nil
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	key := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	secrets := map[string]string{"state-keys": "k1:" + key()}
	apiKey := ""
	env := []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	for k, v := range st.env() {
		env = append(env, k+"="+rebase(v))
	}
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.Name == "CALLWATCH_SERVER_ADDR":
			v = addr
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			var ok bool
			if v, ok = secrets[e.ValueFrom.SecretKeyRef.Key]; !ok {
				apiKey = "cw-" + key()
				v = apiKey
			}
		}
		env = append(env, e.Name+"="+v)
	}
	args := c.Args
	if len(c.Command) > 0 {
		t.Fatal("the Deployment overrides the image's ENTRYPOINT")
	}
	var stderr syncBuffer // the server writes it while the test reads it
	cmd := exec.Command(bin, args...)
	cmd.Dir = rebase(st.all("WORKDIR")[0])
	cmd.Env = env
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if apiKey != "" {
			req.Header.Set("Authorization", "Bearer "+apiKey)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	ready := c.ReadinessProbe.HTTPGet.Path
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if code, _ := get(ready); code == 200 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the server exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get(c.LivenessProbe.HTTPGet.Path); code != 200 {
		t.Errorf("liveness %s: %d", c.LivenessProbe.HTTPGet.Path, code)
	}
	code, body := get("/v1/model")
	var info struct{ Backend string }
	if code != 200 || json.Unmarshal(body, &info) != nil || info.Backend != st.env()["CALLWATCH_BACKEND"] {
		t.Errorf("GET /v1/model: %d %s; want the %s backend", code, body, st.env()["CALLWATCH_BACKEND"])
	}

	// The Deployment's settings are all read, none of them warned about.
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "CALLWATCH_") && (strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) ||
			strings.Contains(strings.ToLower(l), "unknown")) {
			t.Errorf("the server warns about the Deployment's environment: %s", l)
		}
	}

	// SIGTERM: readiness fails at once, the process leaves within the grace
	// period, cleanly.
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if code, _ := get(ready); code == 200 {
		t.Error("readiness still 200 after SIGTERM")
	}
	grace := time.Duration(*o.deploy.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		t.Logf("drained and stopped %s after SIGTERM (grace period %s)", time.Since(t0).Round(time.Millisecond), grace)
	case <-time.After(grace):
		t.Errorf("still running %s after SIGTERM: Kubernetes would kill it", grace)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
