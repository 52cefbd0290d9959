package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callwatch/callwatch/server"
)

type testPKI struct {
	dir                                  string
	ca, cert, key, clientCert, clientKey string
	otherCert, otherKey                  string // a client certificate of another CA
	hashes                               string // an api_keys_file
	caPool                               *x509.CertPool
}

// writePKI makes a CA, a server certificate for 127.0.0.1 and localhost,
// a client certificate of the CA and one of another CA.
func writePKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	p := testPKI{dir: dir}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	mkCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k, der
	}
	leaf := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k := newKey()
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		return der, kd
	}
	ca, caKey, caDER := mkCA("callwatch test CA")
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(ca)
	c, k := leaf(ca, caKey, "callwatch", x509.ExtKeyUsageServerAuth)
	p.cert, p.key = write("server.pem", "CERTIFICATE", c), write("server-key.pem", "EC PRIVATE KEY", k)
	c, k = leaf(ca, caKey, "client", x509.ExtKeyUsageClientAuth)
	p.clientCert, p.clientKey = write("client.pem", "CERTIFICATE", c), write("client-key.pem", "EC PRIVATE KEY", k)
	other, otherKey, _ := mkCA("another CA")
	c, k = leaf(other, otherKey, "intruder", x509.ExtKeyUsageClientAuth)
	p.otherCert, p.otherKey = write("other.pem", "CERTIFICATE", c), write("other-key.pem", "EC PRIVATE KEY", k)
	sum := sha256.Sum256([]byte("file-key-0123456789abcdef"))
	p.hashes = filepath.Join(dir, "api-keys")
	if err := os.WriteFile(p.hashes, []byte("# test\n"+hex.EncodeToString(sum[:])+" classify,stream\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startServe resolves serve's settings from env and args, and serves an
// unloaded server (liveness answers) on the listener serve would open.
func startServe(t *testing.T, envv map[string]string, args ...string) (string, error) {
	t.Helper()
	e := &env{getenv: func(k string) string { return envv[k] }, stderr: &bytes.Buffer{}}
	fs, err := commandFlags(e, "serve", append([]string{"--addr", "127.0.0.1:0"}, args...))
	if err != nil {
		return "", err
	}
	if _, err := e.loadConfig(fs); err != nil {
		return "", err
	}
	o, err := e.serveSettings(fs)
	if err != nil {
		return "", err
	}
	s, err := server.NewServer(o.cfg, server.Deps{})
	if err != nil {
		return "", err
	}
	ln, err := o.listen()
	if err != nil {
		return "", err
	}
	hs := &http.Server{Handler: s}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Shutdown(context.Background()); s.Close() })
	return ln.Addr().String(), nil
}

func tlsGet(t *testing.T, url string, cfg *tls.Config, header map[string]string) (int, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestServeTLS: --tls-cert/--tls-key serve HTTPS with the certificate;
// --tls-client-ca requires a client certificate of that CA.
func TestServeTLS(t *testing.T) {
	p := writePKI(t)
	addr, err := startServe(t, nil, "--tls-cert", p.cert, "--tls-key", p.key)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := tlsGet(t, "https://"+addr+"/v2/health/live", &tls.Config{RootCAs: p.caPool}, nil); err != nil || code != 200 {
		t.Fatalf("https with the CA: %d %v", code, err)
	}
	if _, err := tlsGet(t, "https://"+addr+"/v2/health/live", &tls.Config{}, nil); err == nil {
		t.Error("a client that does not trust the CA connected")
	}
	if resp, err := http.Get("http://" + addr + "/v2/health/live"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP answered 200 on the TLS port")
	}

	addr, err = startServe(t, map[string]string{"CALLWATCH_SERVER_TLS_CLIENT_CA": p.ca}, "--tls-cert", p.cert, "--tls-key", p.key)
	if err != nil {
		t.Fatal(err)
	}
	load := func(cert, key string) []tls.Certificate {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	url := "https://" + addr + "/v2/health/live"
	if code, err := tlsGet(t, url, &tls.Config{RootCAs: p.caPool, Certificates: load(p.clientCert, p.clientKey)}, nil); err != nil || code != 200 {
		t.Fatalf("mTLS with a client certificate of the CA: %d %v", code, err)
	}
	if _, err := tlsGet(t, url, &tls.Config{RootCAs: p.caPool}, nil); err == nil {
		t.Error("mTLS: a client without a certificate was served")
	}
	if _, err := tlsGet(t, url, &tls.Config{RootCAs: p.caPool, Certificates: load(p.otherCert, p.otherKey)}, nil); err == nil {
		t.Error("mTLS: a client certificate of another CA was accepted")
	}

	// API keys over TLS, from the hash file.
	addr, err = startServe(t, nil, "--tls-cert", p.cert, "--tls-key", p.key, "--api-keys-file", p.hashes)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: p.caPool}
	if code, _ := tlsGet(t, "https://"+addr+"/v1/model", cfg, nil); code != 401 {
		t.Errorf("no key over TLS: %d, want 401", code)
	}
	if code, _ := tlsGet(t, "https://"+addr+"/v1/model", cfg, map[string]string{"Authorization": "Bearer file-key-0123456789abcdef"}); code != 503 {
		t.Errorf("the file's key over TLS: %d, want 503 not_ready (authenticated; no model loaded)", code)
	}

	for _, bad := range [][]string{
		{"--tls-cert", p.cert},
		{"--tls-key", p.key},
		{"--tls-client-ca", p.ca},
		{"--tls-cert", p.cert, "--tls-key", p.clientKey},
		{"--tls-cert", p.cert, "--tls-key", p.key, "--tls-client-ca", p.key},
	} {
		if _, err := startServe(t, nil, bad...); err == nil || !strings.Contains(err.Error(), "tls") {
			t.Errorf("%v: %v; want a refusal naming the TLS settings", bad, err)
		}
	}
}

// TestServeInsecure: listening outside loopback needs API keys or an
// explicit --insecure.
func TestServeInsecure(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		ok   bool
	}{
		{nil, []string{"--addr", "0.0.0.0:0"}, false},
		{nil, []string{"--addr", ":0"}, false},
		{nil, []string{"--addr", "0.0.0.0:0", "--insecure"}, true},
		{map[string]string{"CALLWATCH_SERVER_INSECURE": "true"}, []string{"--addr", "0.0.0.0:0"}, true},
		{map[string]string{"CALLWATCH_SERVER_API_KEYS": "k-0123456789abcdef"}, []string{"--addr", "0.0.0.0:0"}, true},
		{nil, []string{"--addr", "127.0.0.1:0"}, true},
		{nil, []string{"--addr", "localhost:0"}, true},
	} {
		_, err := startServe(t, c.env, c.args...)
		if (err == nil) != c.ok {
			t.Errorf("%v %v: %v, want ok=%v", c.env, c.args, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("%v: %q does not say how to proceed", c.args, err)
		}
	}
	for addr, want := range map[string]bool{"[::1]:80": true, "127.0.0.2:80": true, "localhost:80": true, ":80": false, "[::]:80": false, "10.0.0.1:80": false} {
		if loopback(addr) != want {
			t.Errorf("loopback(%s) = %v", addr, !want)
		}
	}
}
