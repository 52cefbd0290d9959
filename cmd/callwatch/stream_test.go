package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/callwatch/callwatch"
)

// TestStreamInterleaved: calls interleaved on one input get, per call, the
// same events as each call streamed alone.
func TestStreamInterleaved(t *testing.T) {
	texts := []string{
		"여보세요 네 서울중앙지검 수사관입니다 본인 명의 통장이 사건에 연루됐습니다 지금 통화 녹취 중이니까 가족한테 말씀하시면 안 됩니다 자산 보호를 위해서 안전계좌로 이체하셔야 합니다 현금을 인출해서 직원한테 전달하세요",
		"네 감사합니다 신한은행 고객센터입니다 적금 만기 안내드리려고요 본인 확인 위해 생년월일 말씀해 주세요 만기 금액은 입출금 통장으로 들어갑니다 앱에서 확인하시거나 영업점 방문하시면 됩니다",
		"엄마 나야 폰 액정이 깨져서 친구 폰으로 연락해 급하게 상품권 좀 사서 핀 번호 보내줘 아빠한테는 말하지 말고",
	}
	type seg struct {
		id string
		s  callwatch.Segment
	}
	var perCall [][]seg
	for i, tx := range texts {
		var ss []seg
		for _, s := range callwatch.SplitSegments(tx, 0) {
			ss = append(ss, seg{fmt.Sprintf("call-%d", i), s})
		}
		perCall = append(perCall, ss)
	}
	line := func(s seg) string {
		b, _ := json.Marshal(map[string]any{"call_id": s.id, "start": s.s.Start, "end": s.s.End, "text": s.s.Text})
		return string(b)
	}
	events := func(out string) map[string][]string {
		m := map[string][]string{}
		for _, rec := range jsonl(t, out) {
			id, _ := rec["call_id"].(string) // "" for lines that could not be parsed
			b, _ := json.Marshal(rec)
			m[id] = append(m[id], string(b))
		}
		return m
	}
	alone := map[string][]string{}
	for _, ss := range perCall {
		var in []string
		for _, s := range ss {
			in = append(in, line(s))
		}
		r := runCLI(t, strings.Join(in, "\n")+"\n", nil, "stream", "--model", modelDir, "--backend", "native")
		if r.err != nil {
			t.Fatalf("stream alone: %v\n%s", r.err, r.stderr)
		}
		for k, v := range events(r.stdout) {
			alone[k] = v
		}
	}
	// Interleave at random, keeping each call's own order.
	rng := rand.New(rand.NewPCG(3, 4))
	pos := make([]int, len(perCall))
	var in []string
	for {
		var open []int
		for i := range perCall {
			if pos[i] < len(perCall[i]) {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			break
		}
		i := open[rng.IntN(len(open))]
		in = append(in, line(perCall[i][pos[i]]))
		pos[i]++
	}
	in = append(in, `{"call_id":"call-x","text":`) // malformed: an error record, the rest goes on
	for _, batch := range []string{"1", "2", "32"} {
		r := runCLI(t, strings.Join(in, "\n")+"\n", nil, "stream", "--model", modelDir, "--backend", "native", "--batch", batch)
		if r.code != exitFailed {
			t.Fatalf("batch %s: exit %d (err %v), want 1 for the malformed line", batch, r.code, r.err)
		}
		got := events(r.stdout)
		for id, want := range alone {
			if !reflect.DeepEqual(got[id], want) {
				t.Errorf("batch %s, %s: interleaved events differ from alone:\n got %v\nwant %v", batch, id, got[id], want)
			}
		}
		if len(got[""]) != 1 || !strings.Contains(got[""][0], `"line":`) {
			t.Errorf("malformed line should give one error record with its line: %v", got[""])
		}
	}
	if n := len(alone["call-0"]); n < len(perCall[0]) {
		t.Fatalf("call-0 got %d events for %d segments", n, len(perCall[0]))
	}
	alerted := false
	for _, ev := range alone["call-0"] {
		if strings.Contains(ev, `"alert"`) && strings.Contains(ev, `"reasons"`) {
			alerted = true
		}
	}
	if !alerted {
		t.Errorf("the scam call raised no alert with reasons: %v", alone["call-0"])
	}
}
