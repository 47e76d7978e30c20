package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeLines posts Influx lines to s (timestamps in seconds).
func writeLines(t *testing.T, s *testServer, lines []byte) {
	t.Helper()
	if code, body := s.post("/write?precision=s", "text/plain", lines); code != http.StatusNoContent {
		t.Fatalf("write: %d %s", code, body)
	}
}

// TestSeriesListingStreams lists more series than the select budget could
// hold as selected series, from a segment and the head, through two
// overlapping match[] sets: /api/v1/series lists labels only, charges no
// series to query.max_select_bytes and streams an answer longer than its
// buffer, sorted and without duplicates. Before, the listing was charged
// like a query's selection and got 422 naming query.max_select_bytes.
func TestSeriesListingStreams(t *testing.T) {
	dir := t.TempDir()
	// The head's references to 24,000 matching series take 1.5 MB of the
	// 3 MiB budget; selected for a query they would take over 8 MB.
	args := []string{"--query.max-select-bytes", "3145728"}
	s := startServer(t, dir, args...)
	pad := strings.Repeat("p", 40)
	now := time.Now().Unix()
	lines := func(from, to int, ts int64) []byte {
		var b bytes.Buffer
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "lst,i=%05d,pad=%s v=1 %d\n", i, pad, ts)
		}
		return b.Bytes()
	}
	writeLines(t, s, lines(0, 24000, now-600))
	s.stop() // flushes the head into a segment
	s = startServer(t, dir, args...)
	writeLines(t, s, lines(12000, 36000, now-60)) // half of them again, in the head

	list := func(params url.Values) (names []string, warnings []string, size int) {
		t.Helper()
		code, _, body := s.call(http.MethodGet, "/api/v1/series?"+params.Encode(), "", nil)
		if code != http.StatusOK {
			t.Fatalf("series %v: %d %.300s", params, code, body)
		}
		var env struct {
			Status   string              `json:"status"`
			Data     []map[string]string `json:"data"`
			Warnings []string            `json:"warnings"`
		}
		if err := json.Unmarshal([]byte(body), &env); err != nil || env.Status != "success" {
			t.Fatalf("series: %v: %.300s", err, body)
		}
		for _, ls := range env.Data {
			names = append(names, ls["i"])
		}
		return names, env.Warnings, len(body)
	}
	all, warnings, size := list(url.Values{"match[]": {"lst_v", `{__name__="lst_v",i=~"1.*"}`}})
	if len(all) != 36000 || len(warnings) != 0 {
		t.Fatalf("listed %d series with warnings %q, want 36000 and none", len(all), warnings)
	}
	if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Fatal("the listing is not sorted, or holds duplicates")
	}
	if size <= 1<<20 {
		t.Fatalf("the answer is %d bytes: the test meant one longer than the 1 MiB buffer", size)
	}
	limited, warnings, _ := list(url.Values{"match[]": {`{i=~"2.*"}`, "lst_v"}, "limit": {"10"}})
	if !slices.Equal(limited, all[:10]) || !slices.Equal(warnings, []string{"results truncated due to limit"}) {
		t.Fatalf("limit 10: %q with warnings %q, want the 10 smallest and the truncation warning", limited, warnings)
	}
	// A query selecting them all is held to the budget.
	code, _, body := s.call(http.MethodGet, "/api/v1/query?query=count(lst_v)", "", nil)
	checkError(t, code, body, http.StatusUnprocessableEntity, "execution", "query.max_select_bytes")
}

// TestQuerySeriesLimitWhileSelecting holds a query to query.max_series
// while it selects: a query that selects more series than the limit gets
// a 422 naming it even though its answer is one series. Before, the limit
// applied to the answer only, after the whole evaluation.
func TestQuerySeriesLimitWhileSelecting(t *testing.T) {
	s := startServer(t, "", "--query.max-series", "100")
	var b bytes.Buffer
	now := time.Now().Unix()
	for i := range 300 {
		fmt.Fprintf(&b, "sel,i=%03d v=1 %d\n", i, now-30)
	}
	writeLines(t, s, b.Bytes())
	code, _, body := s.call(http.MethodGet, "/api/v1/query?query=sum(sel_v)", "", nil)
	checkError(t, code, body, http.StatusUnprocessableEntity, "execution", "more than the limit of 100 series (query.max_series)")
	if got := s.metric("", rejections("query.max_series")); got != 1 {
		t.Fatalf("%s = %v, want 1", rejections("query.max_series"), got)
	}
	// Two selectors of the same 100 series select 100 distinct series.
	code, _, body = s.call(http.MethodGet, "/api/v1/query?query="+url.QueryEscape(`sum(sel_v{i=~"0.*"}) + sum(sel_v{i=~"0.*"})`), "", nil)
	if code != http.StatusOK || !strings.Contains(body, `"200"`) {
		t.Fatalf("100 series selected twice: %d %s", code, body)
	}
	params := url.Values{"query": {`sum(sel_v{i=~"0.*|10[0-9]"})`}, "start": {fmt.Sprint(now - 3600)}, "end": {fmt.Sprint(now)}, "step": {"60"}}
	code, _, body = s.call(http.MethodGet, "/api/v1/query_range?"+params.Encode(), "", nil)
	checkError(t, code, body, http.StatusUnprocessableEntity, "execution", "query.max_series")
}
