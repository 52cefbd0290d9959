package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
	"github.com/callwatch/callwatch/server"
)

// TestCLIAndServerSameBytes: the CLI's classify records and the server's
// classify results are the same bytes for the same texts (one wire type and
// one rounding rule, package api).
func TestCLIAndServerSameBytes(t *testing.T) {
	texts := []string{
		"지금 바로 안전계좌로 이체하셔야 합니다 검찰청 수사관입니다 명의가 도용돼서요",
		"적금 만기 안내드리려고 연락드렸습니다 앱에서 확인하시거나 영업점 방문하시면 됩니다",
		"엄마 나 폰 액정 깨져서 임시폰이야 문화상품권 좀 사줄 수 있어",
	}
	r := runCLI(t, "", nil, append([]string{"classify", "--model", modelDir, "--backend", "native"}, texts...)...)
	if r.err != nil {
		t.Fatalf("classify: %v\n%s", r.err, r.stderr)
	}
	cli := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")

	b, err := models.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	be, err := callwatch.OpenBackend(callwatch.BackendNative, b, ort.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := callwatch.New(b, be)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(server.DefaultConfig(), server.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Load(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	body, _ := json.Marshal(server.ClassifyRequest{Texts: texts})
	resp, err := http.Post(ts.URL+"/v1/classify", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Results) != len(cli) {
		t.Fatalf("server gave %d results, CLI %d records", len(raw.Results), len(cli))
	}
	for i := range cli {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw.Results[i]); err != nil {
			t.Fatal(err)
		}
		if buf.String() != cli[i] {
			t.Errorf("record %d:\n  CLI    %s\n  server %s", i+1, cli[i], buf.String())
		}
	}
}
