package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/callwatch/callwatch"
	"github.com/callwatch/callwatch/models"
	"github.com/callwatch/callwatch/runtime/ort"
)

func main() {
	f, _ := os.Open("/tmp/abw/ids.jsonl")
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var ids [][]int64
	for sc.Scan() {
		var r []int64
		json.Unmarshal(sc.Bytes(), &r)
		ids = append(ids, r)
	}
	b, _ := models.Load("models/ko-vishing-lstm")
	be, err := callwatch.OpenBackend(os.Args[1], b.Model, ort.Options{}, nil)
	if err != nil {
		panic(err)
	}
	d, _ := callwatch.New(b, be)
	ctx := context.Background()
	d.ScoreIDs(ctx, ids, nil)
	for range 3 {
		t0 := time.Now()
		d.ScoreIDs(ctx, ids, nil)
		fmt.Println(os.Args[1], time.Since(t0))
	}
}
