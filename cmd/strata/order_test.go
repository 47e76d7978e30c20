package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"
)

// rawSamples returns the raw samples of ord_v through a range-vector query.
func rawSamples(t *testing.T, base string) [][2]any {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {"ord_v[1d]"}, "time": {"1700050000"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil || len(env.Data.Result) != 1 {
		t.Fatalf("query ord_v: %v %s", err, b)
	}
	return env.Data.Result[0].Values
}

// TestWriteOrderSurvivesReplay has writers race on the same timestamps of
// one series over HTTP, reads what the server answers, kills it with
// SIGKILL and reads again after the replay: last write wins must pick the
// same writer for every timestamp before and after.
func TestWriteOrderSurvivesReplay(t *testing.T) {
	bin := strataBinary(t)
	dir := t.TempDir()
	p := startProcess(t, bin, dir, "--storage.maintenance-interval", "1h", "--cache.enabled=false")
	const writers, rounds, stamps = 8, 60, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var body bytes.Buffer
				for ts := range stamps {
					fmt.Fprintf(&body, "ord v=%d %d\n", w, 1_700_000_000+r*stamps+ts)
				}
				resp, err := http.Post(p.url+"/write?precision=s", "text/plain", &body)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					t.Errorf("push: %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	before := rawSamples(t, p.url)
	if len(before) != rounds*stamps {
		t.Fatalf("%d samples before the kill, want %d", len(before), rounds*stamps)
	}
	p.kill(t)
	p = startProcess(t, bin, dir, "--storage.maintenance-interval", "1h", "--cache.enabled=false")
	after := rawSamples(t, p.url)
	if !reflect.DeepEqual(before, after) {
		diff := 0
		for i := range min(len(before), len(after)) {
			if before[i] != after[i] {
				diff++
			}
		}
		t.Fatalf("after the replay %d of %d samples differ (or the count: %d vs %d)", diff, len(before), len(after), len(before))
	}
}
