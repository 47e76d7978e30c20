package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLabelValuesAndSeriesLimit: label/<n>/values and series honour limit
// as Prometheus does: the smallest values (label order for series), and the
// warning "results truncated due to limit" only when something was cut,
// with the data split between a segment and the head.
func TestLabelValuesAndSeriesLimit(t *testing.T) {
	s := startServer(t, "")
	ts := time.Now().UnixMilli()
	write := func(from, to int) {
		t.Helper()
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "up{namespace=\"ns-%d\",pod=\"pod-%03d\"} 1 %d\n", i%3, i, ts)
		}
		if code, body := s.post("/api/v1/import/prometheus", "text/plain", []byte(b.String())); code/100 != 2 {
			t.Fatalf("write: %d %s", code, body)
		}
	}
	write(0, 60)
	s.flush()      // pods 000..059 in a segment
	write(60, 100) // pods 060..099 in the head
	var all []string
	for i := range 100 {
		all = append(all, fmt.Sprintf("pod-%03d", i))
	}
	type answer struct {
		Status   string          `json:"status"`
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	get := func(path string, params url.Values) answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.url+path+"?"+params.Encode(), nil)
		code, body := s.do(req)
		var a answer
		if err := json.Unmarshal([]byte(body), &a); code != http.StatusOK || err != nil || a.Status != "success" {
			t.Fatalf("GET %s?%s: %d %s", path, params.Encode(), code, body)
		}
		return a
	}
	truncated := func(a answer) bool { return slices.Equal(a.Warnings, []string{"results truncated due to limit"}) }
	for _, c := range []struct {
		params url.Values
		want   []string
		cut    bool
	}{
		{url.Values{"limit": {"10"}}, all[:10], true},
		{url.Values{"limit": {"99"}}, all[:99], true},
		{url.Values{"limit": {"100"}}, all, false},
		{url.Values{"limit": {"0"}}, all, false},
		{url.Values{}, all, false},
		{url.Values{"limit": {"5"}, "match[]": {`up{namespace="ns-1"}`}}, []string{"pod-001", "pod-004", "pod-007", "pod-010", "pod-013"}, true},
		{url.Values{"limit": {"5"}, "match[]": {`up{namespace="ns-1"}`, `up{namespace="ns-2"}`}}, []string{"pod-001", "pod-002", "pod-004", "pod-005", "pod-007"}, true},
	} {
		a := get("/api/v1/label/pod/values", c.params)
		var got []string
		if err := json.Unmarshal(a.Data, &got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) || truncated(a) != c.cut || (!c.cut && len(a.Warnings) > 0) {
			t.Fatalf("label values %v: %d values %v, warnings %q; want %d values, cut %v", c.params, len(got), got, a.Warnings, len(c.want), c.cut)
		}
	}
	for _, c := range []struct {
		limit string
		want  int
		cut   bool
	}{{"7", 7, true}, {"100", 100, false}, {"", 100, false}} {
		params := url.Values{"match[]": {"up"}}
		if c.limit != "" {
			params.Set("limit", c.limit)
		}
		a := get("/api/v1/series", params)
		var got []map[string]string
		if err := json.Unmarshal(a.Data, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != c.want || truncated(a) != c.cut || (!c.cut && len(a.Warnings) > 0) {
			t.Fatalf("series limit=%q: %d series, warnings %q; want %d, cut %v", c.limit, len(got), a.Warnings, c.want, c.cut)
		}
		for i, m := range got {
			// Series sort by labels: namespace first, then pod.
			if i > 0 && (got[i-1]["namespace"] > m["namespace"] || got[i-1]["namespace"] == m["namespace"] && got[i-1]["pod"] >= m["pod"]) {
				t.Fatalf("series limit=%q not in label order at %d: %v, %v", c.limit, i, got[i-1], m)
			}
		}
		if c.cut && (got[0]["namespace"] != "ns-0" || got[0]["pod"] != "pod-000") {
			t.Fatalf("series limit=%q starts at %v, want the smallest label set", c.limit, got[0])
		}
	}
}
