package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The dashboard tests drive a real headless Chromium against a real server
// holding real data. They need Chromium (Debian's package "chromium"; set
// STRATA_CHROMIUM to use another binary); without one the test fails.
// Screenshots of every page go to $STRATA_ARTIFACTS (default: a temporary
// directory), named in the test log.

// The data set: three hosts of a gauge over the last 50 minutes, one more
// metric, and 200 series × 1,440 points a day back for the render check.
const (
	webHosts        = 3
	webCPUPoints    = 300 // at 10 s
	renderSeries    = 200
	renderPoints    = 1440 // at 60 s
	renderStepSecs  = 60
	webWaitDefault  = 15 * time.Second
	webWaitRender   = 120 * time.Second // generous: the render check runs on loaded CI machines
	webWindowWidth  = 1280
	webWindowHeight = 900
)

func TestWebDashboard(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, "")
	now := time.Now().Truncate(time.Second)
	renderStart := now.Add(-26 * time.Hour).Truncate(time.Minute)
	written := seedWebData(t, s, now, renderStart)
	artifacts := artifactsDir(t)

	t.Run("Graph", func(t *testing.T) { testWebGraph(t, b, s, artifacts) })
	t.Run("Render", func(t *testing.T) { testWebRender(t, b, s, artifacts, renderStart) })
	t.Run("Explore", func(t *testing.T) { testWebExplore(t, b, s, artifacts) })
	t.Run("Status", func(t *testing.T) { testWebStatus(t, b, s, artifacts, written) })
	t.Run("RangeAxisAndLonePoints", func(t *testing.T) { testWebRangeAxis(t, b, s, artifacts, now) })
	t.Run("RoundedTableAndNoMidWordWraps", func(t *testing.T) { testWebRoundingAndWraps(t, b, s, artifacts) })
	t.Run("ChartHeight", func(t *testing.T) { testWebHeight(t, b, s, artifacts) })
	t.Run("SteadyIngestRate", func(t *testing.T) { testWebIngestRate(t, b, s, artifacts, now) })
	t.Run("LegendStatistics", func(t *testing.T) { testWebLegendStats(t, b, s, artifacts) })
	t.Run("LegendPastTenSeries", func(t *testing.T) { testWebLegendScales(t, b, s, artifacts, renderStart) })
	t.Run("ZoomOutAndBack", func(t *testing.T) { testWebZoom(t, b, s, artifacts) })
	t.Run("UTCSwitch", func(t *testing.T) { testWebUTC(t, b, s, artifacts) })
	t.Run("UnitsAndModes", func(t *testing.T) { testWebUnitsAndModes(t, b, s, artifacts) })
	t.Run("PrometheusLinks", func(t *testing.T) { testWebPromLinks(t, b, s, artifacts, now) })
	t.Run("SavedDashboards", func(t *testing.T) { testWebDashboards(t, b, s, artifacts) })
	t.Run("GrafanaImport", func(t *testing.T) { testWebGrafanaImport(t, b, s, artifacts) })
	t.Run("NativeHistograms", func(t *testing.T) { testWebHistograms(t, b, s, artifacts, now) })
	t.Run("UTF8Names", func(t *testing.T) { testWebUTF8(t, b, s, artifacts, now) })
	t.Run("OwnOriginAndQuietConsole", func(t *testing.T) { b.checkRequestsAndConsole(t, s.url) })
}

// seedWebData writes the data set and returns how many samples it wrote.
// The render series go to segments (a flush), the rest stays in the head.
func seedWebData(t *testing.T, s *testServer, now, renderStart time.Time) int {
	t.Helper()
	var b strings.Builder
	n := 0
	push := func() {
		if code, body := s.post("/write?precision=s", "text/plain", []byte(b.String())); code != http.StatusNoContent {
			t.Fatalf("write: %d %s", code, body)
		}
		b.Reset()
	}
	for i := range renderSeries {
		for k := range renderPoints {
			v := 100 + 40*math.Sin(float64(k)/90+float64(i)/7) + float64(i%10)
			fmt.Fprintf(&b, "render,series=s%03d load=%.3f %d\n", i, v, renderStart.Unix()+int64(k*renderStepSecs))
			n++
		}
		if i%50 == 49 {
			push()
		}
	}
	if code, body := s.post("/api/v1/admin/tsdb/flush", "text/plain", nil); code/100 != 2 {
		t.Fatalf("flush: %d %s", code, body)
	}
	// One lone sample, a minute before a 30-minute step of the grid (a
	// range query sees a sample only within 5 minutes before a step), and a
	// value with many decimals.
	fmt.Fprintf(&b, "lone,host=h1 v=5 %d\n", now.Add(-20*time.Minute).Unix()/1800*1800-60)
	n++
	for k := range 10 {
		fmt.Fprintf(&b, "frac,host=h1 v=%s %d\n", webFrac, now.Add(-time.Duration(k)*time.Minute).Unix())
		n++
	}
	start := now.Add(-time.Duration(webCPUPoints-1) * 10 * time.Second)
	for h := 1; h <= webHosts; h++ {
		for k := range webCPUPoints {
			ts := start.Unix() + int64(k*10)
			fmt.Fprintf(&b, "cpu,host=h%d,dc=eu usage=%g %d\n", h, float64(h*20)+float64(k%8)*1.25, ts)
			n++
			if h == 1 {
				fmt.Fprintf(&b, "mem,host=h1 used_bytes=%d %d\n", 1<<30+k*4096, ts)
				n++
			}
		}
	}
	push()
	return n
}

func testWebGraph(t *testing.T, b *browser, s *testServer, artifacts string) {
	editor := `[data-panel=p0] textarea`
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS(editor)))

	// Autocomplete: a metric name, then the values of a label.
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), "cpu_u"))
	b.poll(t, `[...document.querySelectorAll('[data-panel=p0] .ac .ac-text')].some(e => e.textContent === 'cpu_usage')`)
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), kb.Tab))
	if got := evalJS[string](t, b, `document.querySelector('[data-panel=p0] textarea').value`); got != "cpu_usage" {
		t.Fatalf("after accepting the completion the editor holds %q", got)
	}
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), `{host="`))
	b.poll(t, `[...document.querySelectorAll('[data-panel=p0] .ac .ac-text')].map(e => e.textContent).join() === 'h1,h2,h3'`)

	// Run the query: one legend entry per series the API has.
	b.do(t, webWaitDefault,
		chromedp.SendKeys(chromedp.CSS(editor), kb.Escape),
		chromedp.SetValue(chromedp.CSS(editor), "cpu_usage"),
		chromedp.Focus(chromedp.CSS(editor)),
		pressEnter())
	b.do(t, webWaitDefault, chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn]`)))
	var series []map[string]string
	apiGet(t, s, "/api/v1/series", url.Values{"match[]": {"cpu_usage"}}, &series)
	legend := evalJS[[]string](t, b, `[...document.querySelectorAll('[data-panel=p0] .legend-label')].map(e => e.textContent)`)
	if len(legend) != len(series) || len(series) != webHosts {
		t.Fatalf("legend has %d entries %q, the API %d series", len(legend), legend, len(series))
	}
	meta := evalJS[string](t, b, `document.querySelector('[data-panel=p0] .meta').textContent`)
	if !strings.Contains(meta, "cache:") || !regexp.MustCompile(`\d+ ms`).MatchString(meta) {
		t.Errorf("panel meta %q lacks the cache status or the time taken", meta)
	}

	// Hover: the tooltip's values are what the API answers at that time.
	b.hover(t, "[data-panel=p0]", 0.6)
	tip := evalJS[struct {
		T    float64     `json:"t"`
		Rows [][2]string `json:"rows"`
	}](t, b, `(() => { const tt = document.querySelector('[data-panel=p0] .tooltip');
		return {t: Number(tt.dataset.t), rows: [...tt.querySelectorAll('.tooltip-row')].map(r =>
			[r.querySelector('.tooltip-label').textContent, r.querySelector('.tooltip-value').textContent])}; })()`)
	if len(tip.Rows) != webHosts {
		t.Fatalf("tooltip shows %d rows, want %d: %v", len(tip.Rows), webHosts, tip.Rows)
	}
	want := instantValues(t, s, "cpu_usage", tip.T)
	for _, r := range tip.Rows {
		checkValue(t, "tooltip "+r[0], r[1], want[r[0]])
	}
	b.screenshot(t, artifacts, "graph.png")

	// The legend isolates a series on click, a refresh keeps that choice,
	// and a second click shows all again.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`[data-panel=p0] .legend li:first-child`)))
	b.poll(t, `document.querySelectorAll('[data-panel=p0] .legend li.off').length === 2`)
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`.toolbar button.primary`)))
	b.poll(t, `!document.querySelector('[data-panel=p0]').classList.contains('busy')`)
	if n := evalJS[int](t, b, `document.querySelectorAll('[data-panel=p0] .legend li.off').length`); n != 2 {
		t.Errorf("after a refresh %d series are hidden, want 2", n)
	}
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`[data-panel=p0] .legend li:first-child`)))
	b.poll(t, `document.querySelectorAll('[data-panel=p0] .legend li.off').length === 0`)

	// The table view of the same result.
	b.do(t, webWaitDefault,
		chromedp.Click(chromedp.CSS(`[data-panel=p0] button[data-view=table]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-panel=p0] table.result`)))
	rows := evalJS[[][3]string](t, b, `[...document.querySelectorAll('[data-panel=p0] table.result tr.row')].map(r =>
		[r.dataset.t, r.querySelector('.series').textContent, r.children[1].textContent])`)
	if len(rows) != webHosts {
		t.Fatalf("table has %d rows, want %d", len(rows), webHosts)
	}
	for _, r := range rows {
		ts, err := strconv.ParseFloat(r[0], 64)
		if err != nil {
			t.Fatalf("row time %q: %v", r[0], err)
		}
		checkValue(t, "table "+r[1], r[2], instantValues(t, s, "cpu_usage", ts)[r[1]])
	}
	b.screenshot(t, artifacts, "graph-table.png")
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`[data-panel=p0] button[data-view=chart]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-panel=p0] .u-over`)))

	// A second panel with a bad query shows the API's error.
	bad := "sum(cpu_usage"
	b.do(t, webWaitDefault,
		chromedp.Click(chromedp.CSS(`button.add`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-panel=p1] textarea`)),
		chromedp.SetValue(chromedp.CSS(`[data-panel=p1] textarea`), bad),
		chromedp.Focus(chromedp.CSS(`[data-panel=p1] textarea`)),
		pressEnter(),
		chromedp.WaitVisible(chromedp.CSS(`[data-panel=p1] .error`)))
	apiErr := apiError(t, s, "/api/v1/query_range", url.Values{"query": {bad}, "start": {"0"}, "end": {"60"}, "step": {"15"}})
	shown := evalJS[string](t, b, `document.querySelector('[data-panel=p1] .error').textContent`)
	if !strings.Contains(shown, apiErr) || !strings.Contains(shown, "bad_data") {
		t.Errorf("error box %q does not show the API's error %q", shown, apiErr)
	}

	// The URL holds the view: opening it again draws the same panels, and
	// the last view comes back from localStorage on a bare visit.
	search := evalJS[string](t, b, `location.search`)
	q, err := url.ParseQuery(strings.TrimPrefix(search, "?"))
	if err != nil || q.Get("g0.expr") != "cpu_usage" || q.Get("g1.expr") != bad || q.Get("range") != "1h" {
		t.Fatalf("URL state %q", search)
	}
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/"+search),
		chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn="3"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-panel=p1] .error`)))
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/"), chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn="3"]`)))
	if got := evalJS[string](t, b, `document.querySelector('[data-panel=p1] textarea').value`); got != bad {
		t.Errorf("localStorage did not bring back the second panel: %q", got)
	}
	b.screenshot(t, artifacts, "graph-panels.png")

	// The dark theme follows the system.
	b.do(t, webWaitDefault, setColorScheme("dark"), chromedp.Reload(),
		chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn="3"]`)))
	b.hover(t, "[data-panel=p0]", 0.35)
	b.screenshot(t, artifacts, "graph-dark.png")
	b.do(t, webWaitDefault, setColorScheme(""))
}

func testWebRender(t *testing.T, b *browser, s *testServer, artifacts string, start time.Time) {
	end := start.Unix() + int64((renderPoints-1)*renderStepSecs)
	u := fmt.Sprintf("%s/?from=%d&to=%d&step=%d&g0.expr=render_load", s.url, start.Unix(), end, renderStepSecs)
	b.do(t, webWaitRender, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn]`)))
	got := evalJS[struct {
		FirstDraw   float64 `json:"firstDraw"`
		Render      float64 `json:"render"`
		LongestTask float64 `json:"longestTask"`
		Legend      int     `json:"legend"`
		Meta        string  `json:"meta"`
	}](t, b, `({
		firstDraw: performance.getEntriesByName('strata:first-draw:p0')[0].duration,
		render: performance.getEntriesByName('strata:render:p0')[0].duration,
		longestTask: Math.max(0, ...(window.__longTasks || [])),
		legend: document.querySelectorAll('[data-panel=p0] .legend li').length,
		meta: document.querySelector('[data-panel=p0] .meta').textContent,
	})`)
	if got.Legend != renderSeries {
		t.Fatalf("legend has %d entries, want %d", got.Legend, renderSeries)
	}
	if want := fmt.Sprintf("%d points", renderSeries*renderPoints); !strings.Contains(strings.ReplaceAll(got.Meta, ",", ""), want) {
		t.Errorf("panel meta %q, want %s", got.Meta, want)
	}
	// The page still answers the mouse after the draw.
	b.hover(t, "[data-panel=p0]", 0.5)
	if n := evalJS[int](t, b, `document.querySelectorAll('[data-panel=p0] .tooltip-row').length`); n < 1 || n > 10 {
		t.Errorf("tooltip over %d series shows %d rows, want 1 to 10", renderSeries, n)
	}
	report := fmt.Sprintf("render check: %d series x %d points: time to first draw %.0f ms (query, transfer, parse and draw), draw alone %.0f ms, longest main-thread task %.0f ms\n",
		renderSeries, renderPoints, got.FirstDraw, got.Render, got.LongestTask)
	t.Log(strings.TrimSpace(report))
	if err := os.WriteFile(filepath.Join(artifacts, "render.txt"), []byte(report), 0o644); err != nil {
		t.Error(err)
	}
	b.screenshot(t, artifacts, "render.png")
}

// testWebExplore checks that the Explore page shows the cardinality
// /api/v1/status/tsdb reports (series per metric, values per label, the
// head's series) for every metric name, and that it never lists series
// (before, it listed every series with {__name__=~".+"}).
func testWebExplore(t *testing.T, b *browser, s *testServer, artifacts string) {
	b.mu.Lock()
	firstRequest := len(b.requests)
	b.mu.Unlock()
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/explore"), chromedp.WaitVisible(chromedp.CSS(`table.metrics tbody tr`)))
	var names []string
	apiGet(t, s, "/api/v1/label/__name__/values", nil, &names)
	type stat struct {
		Name  string `json:"name"`
		Value int    `json:"value"`
	}
	var st struct {
		HeadStats struct {
			NumSeries int `json:"numSeries"`
		} `json:"headStats"`
		SeriesCountByMetricName    []stat `json:"seriesCountByMetricName"`
		LabelValueCountByLabelName []stat `json:"labelValueCountByLabelName"`
	}
	apiGet(t, s, "/api/v1/status/tsdb", url.Values{"limit": {"10000"}}, &st)
	want := map[string]int{}
	for _, m := range st.SeriesCountByMetricName {
		want[m.Name] = m.Value
	}
	rows := evalJS[[][2]string](t, b, `[...document.querySelectorAll('table.metrics tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])`)
	if len(rows) != len(names) {
		t.Fatalf("explore lists %d metrics %v, the API %d", len(rows), rows, len(names))
	}
	for _, r := range rows {
		if n, ok := want[r[0]]; (ok && digits(r[1]) != n) || (!ok && r[1] != "–") {
			t.Errorf("metric %s: page says %s series, status/tsdb %d", r[0], r[1], n)
		}
	}
	tops := func(cls string) [][2]string {
		return evalJS[[][2]string](t, b, `[...document.querySelectorAll('.`+cls+` li')].map(li => [li.querySelector('.bar-name').textContent, li.querySelector('.bar-value').textContent])`)
	}
	for _, c := range []struct {
		cls   string
		stats []stat
		first string
	}{
		{"top-metrics", st.SeriesCountByMetricName, "render_load"},
		{"top-labels", st.LabelValueCountByLabelName, "series"},
	} {
		got := tops(c.cls)
		if len(got) != min(10, len(c.stats)) || len(got) == 0 || got[0][0] != c.first {
			t.Fatalf("%s: %v, want the first 10 of %v, %s first", c.cls, got, c.stats, c.first)
		}
		for i, g := range got {
			if g[0] != c.stats[i].Name || digits(g[1]) != c.stats[i].Value {
				t.Errorf("%s #%d: page %v, status/tsdb %v", c.cls, i+1, g, c.stats[i])
			}
		}
	}
	summary := evalJS[string](t, b, `document.querySelector('.page-head .summary').textContent`)
	head := ""
	for _, part := range strings.Split(summary, " · ") {
		if strings.HasSuffix(part, " series in the head") {
			head = part
		}
	}
	if head == "" || digits(head) != st.HeadStats.NumSeries {
		t.Errorf("summary %q does not give the head's %d series", summary, st.HeadStats.NumSeries)
	}

	b.do(t, webWaitDefault,
		chromedp.Click(chromedp.CSS(`table.metrics a[href$="metric=cpu_usage"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.metric-detail .label-name`)))
	var hosts []string
	apiGet(t, s, "/api/v1/label/host/values", url.Values{"match[]": {"cpu_usage"}}, &hosts)
	labels := evalJS[map[string][]string](t, b, `Object.fromEntries([...document.querySelectorAll('.metric-detail tbody tr')].map(r =>
		[r.querySelector('.label-name').textContent, [...r.querySelectorAll('.chip')].map(c => c.textContent)]))`)
	if strings.Join(labels["host"], ",") != strings.Join(hosts, ",") || len(labels) != 2 {
		t.Errorf("cpu_usage labels on the page %v, the API's host values %v", labels, hosts)
	}
	b.mu.Lock()
	asked := slices.Clone(b.requests[firstRequest:])
	b.mu.Unlock()
	sawStatus := false
	for _, u := range asked {
		if strings.Contains(u, "/api/v1/series") {
			t.Errorf("the Explore page listed series: %s", u)
		}
		sawStatus = sawStatus || strings.Contains(u, "/api/v1/status/tsdb")
	}
	if !sawStatus {
		t.Errorf("the Explore page did not ask /api/v1/status/tsdb: %q", asked)
	}
	b.screenshot(t, artifacts, "explore.png")
}

func testWebStatus(t *testing.T, b *browser, s *testServer, artifacts string, written int) {
	// The ingest rate needs reads of /metrics five seconds apart.
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/status"))
	b.poll(t, `(document.querySelector('[data-stat=ingest-rate]')?.textContent || '').includes('samples/s')`)

	var build struct{ Version string }
	apiGet(t, s, "/api/v1/status/buildinfo", nil, &build)
	var tsdb struct {
		HeadStats struct{ NumSeries, NumSamples int64 }
		Segments  []struct{ Resolution int64 }
	}
	apiGet(t, s, "/api/v1/status/tsdb", nil, &tsdb)
	var flags map[string]string
	apiGet(t, s, "/api/v1/status/flags", nil, &flags)

	stat := evalJS[map[string]string](t, b, `Object.fromEntries([...document.querySelectorAll('[data-stat]')].map(e => [e.dataset.stat, e.textContent]))`)
	for _, c := range []struct {
		key  string
		want int64
	}{
		{"head-series", tsdb.HeadStats.NumSeries},
		{"head-samples", tsdb.HeadStats.NumSamples},
		{"segment-count", int64(len(tsdb.Segments))},
		{"ingest-total", int64(written)},
	} {
		if got := digits(stat[c.key]); int64(got) != c.want {
			t.Errorf("status %s = %q, the API says %d", c.key, stat[c.key], c.want)
		}
	}
	if stat["version"] != build.Version {
		t.Errorf("status version %q, the API says %q", stat["version"], build.Version)
	}
	resolutions := map[int64]bool{}
	for _, sg := range tsdb.Segments {
		resolutions[sg.Resolution] = true
	}
	if n := evalJS[int](t, b, `document.querySelectorAll('table.segments tbody tr').length`); n != len(resolutions) || n == 0 {
		t.Errorf("segments table has %d resolutions, the API %d", n, len(resolutions))
	}
	for k, v := range flags {
		if strings.HasPrefix(k, "retention.") {
			if _, ok := stat[k]; !ok {
				t.Errorf("retention setting %s=%s is not shown", k, v)
			}
		}
	}
	if v, ok := flags["retention.raw"]; ok && v == "0s" && stat["retention.raw"] != "kept forever" {
		t.Errorf("retention.raw=0s is shown as %q", stat["retention.raw"])
	}
	// The cache figures: the API's (no range query runs meanwhile, so they
	// hold still), or "—" where the server has no cache.
	if code, _ := httpGet(t, s.url+"/api/v1/status/cache"); code == http.StatusNotFound {
		if stat["cache-hit-ratio"] != "—" {
			t.Errorf("cache hit ratio %q without a cache endpoint, want —", stat["cache-hit-ratio"])
		}
	} else {
		var cache struct{ Hits, Misses, Invalidations int64 }
		apiGet(t, s, "/api/v1/status/cache", nil, &cache)
		hits, misses, _ := strings.Cut(stat["cache-hits"], "/")
		if int64(digits(hits)) != cache.Hits || int64(digits(misses)) != cache.Misses || int64(digits(stat["cache-invalidations"])) != cache.Invalidations {
			t.Errorf("cache hits/misses %q, invalidations %q; the API: %+v", stat["cache-hits"], stat["cache-invalidations"], cache)
		}
	}
	b.screenshot(t, artifacts, "status.png")
}

// browser is one headless Chromium shared by the dashboard tests. It records
// every request the pages make and every console problem.
type browser struct {
	ctx context.Context

	mu       sync.Mutex // guards what follows
	requests []string
	problems []string
	failed   []string // URLs of failed requests the browser logged
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := os.Getenv("STRATA_CHROMIUM")
	if path == "" {
		for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		// Never a skip: the README's test command (.ci/test) installs it.
		t.Fatal("no Chromium: run the tests with bash .ci/test, which installs Debian's chromium, or set STRATA_CHROMIUM")
	}
	profile := t.TempDir() // removed after the browser has exited: cleanups run last-in first-out
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(webWindowWidth, webWindowHeight),
	)
	b := &browser{}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b.ctx = ctx

	// The first action starts the browser and ties it to ctx, which has no
	// deadline; the wait for it is bounded here instead.
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			// Record long main-thread tasks, for the render check.
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
				Source: `window.__longTasks = []; try { new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longTasks.push(e.duration); }).observe({type: 'longtask', buffered: true}); } catch (e) {}`,
			})
			return err
		}))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", path, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s", path)
	}
	return b
}

// listen runs in the tab's event loop: it only records.
func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, desc))
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		switch {
		case e.Level != cdplog.EntryLevelError:
		case e.Source == cdplog.EntrySourceNetwork && e.URL != "":
			b.failed = append(b.failed, e.URL)
		default:
			b.problems = append(b.problems, fmt.Sprintf("log %s: %s (%s)", e.Source, e.Text, e.URL))
		}
	}
}

// checkRequestsAndConsole asserts that no page asked anything of another
// origin, and that the console stayed quiet: no exception, no error, and no
// failed request but the two the tests cause on purpose (the bad query, and
// the cache status while the server has no cache).
func (b *browser) checkRequestsAndConsole(t *testing.T, origin string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		t.Fatal("saw no requests at all")
	}
	for _, u := range b.requests {
		// data: URLs are the browser's own (the date picker's icon): they
		// go nowhere.
		if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("request to another origin: %s", u)
		}
	}
	for _, p := range b.problems {
		t.Errorf("console: %s", p)
	}
	for _, u := range b.failed {
		if !strings.Contains(u, "/api/v1/status/cache") && !strings.Contains(u, url.QueryEscape("sum(cpu_usage")) {
			t.Errorf("failed request: %s", u)
		}
	}
	t.Logf("%d requests, all to %s", len(b.requests), origin)
}

func (b *browser) do(t *testing.T, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// poll waits until the JavaScript expression is truthy.
func (b *browser) poll(t *testing.T, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, webWaitDefault)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// hover moves the mouse over the plot of panel at fraction x of its width,
// and waits for the tooltip.
func (b *browser) hover(t *testing.T, panel string, x float64) {
	t.Helper()
	r := evalJS[struct {
		Left   float64 `json:"left"`
		Top    float64 `json:"top"`
		Width  float64 `json:"width"`
		Height float64 `json:"height"`
	}](t, b, fmt.Sprintf(
		`(() => { const o = document.querySelector('%s .u-over'); o.scrollIntoView({block: 'center'}); const r = o.getBoundingClientRect(); return {left: r.left, top: r.top, width: r.width, height: r.height}; })()`, panel))
	b.do(t, webWaitDefault,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r.Left+r.Width*x-7, r.Top+r.Height/2-3),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r.Left+r.Width*x, r.Top+r.Height/2),
		chromedp.WaitVisible(chromedp.CSS(panel+" .tooltip")))
}

func (b *browser) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, webWaitDefault)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

func evalJS[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, webWaitDefault)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// pressEnter sends Enter as a key press with no character event, as a person
// pressing it in a textarea does; the editor runs the query on keydown.
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// setColorScheme emulates the system's colour scheme; "" ends it.
func setColorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		p := emulation.SetEmulatedMediaParams{}
		if scheme != "" {
			p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, p)
		return err
	})
}

func artifactsDir(t *testing.T) string {
	dir := os.Getenv("STRATA_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// apiGet decodes the data of a successful API answer.
func apiGet(t *testing.T, s *testServer, path string, params url.Values, data any) {
	t.Helper()
	code, body := httpGet(t, s.url+path+"?"+params.Encode())
	var env struct {
		Status string
		Data   json.RawMessage
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &env) != nil || env.Status != "success" {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// apiError returns the error message of an API call that must fail.
func apiError(t *testing.T, s *testServer, path string, params url.Values) string {
	t.Helper()
	code, body := httpGet(t, s.url+path+"?"+params.Encode())
	var env struct{ Status, Error string }
	if code < 400 || json.Unmarshal([]byte(body), &env) != nil || env.Status != "error" {
		t.Fatalf("GET %s: %d %s, want an error", path, code, body)
	}
	return env.Error
}

func httpGet(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// instantValues answers query at Unix time ts (seconds), by series in the
// dashboard's notation: name{a="x", b="y"}.
func instantValues(t *testing.T, s *testServer, query string, ts float64) map[string]string {
	t.Helper()
	var d struct {
		Result []struct {
			Metric map[string]string
			Value  [2]any
		}
	}
	apiGet(t, s, "/api/v1/query", url.Values{"query": {query}, "time": {strconv.FormatFloat(ts, 'f', -1, 64)}}, &d)
	out := map[string]string{}
	for _, r := range d.Result {
		out[seriesString(r.Metric)] = fmt.Sprint(r.Value[1])
	}
	return out
}

func seriesString(m map[string]string) string {
	var keys []string
	for k := range m {
		if k != "__name__" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v, _ := json.Marshal(m[k])
		parts[i] = k + "=" + string(v)
	}
	return m["__name__"] + "{" + strings.Join(parts, ", ") + "}"
}

func checkValue(t *testing.T, what, shown, api string) {
	t.Helper()
	a, err1 := strconv.ParseFloat(shown, 64)
	b, err2 := strconv.ParseFloat(api, 64)
	if err1 != nil || err2 != nil || math.Abs(a-b) > 1e-9*math.Max(1, math.Abs(b)) {
		t.Errorf("%s: page shows %q, the API %q", what, shown, api)
	}
}

// digits reads a number the page formatted with digit grouping.
func digits(s string) int {
	n, err := strconv.Atoi(regexp.MustCompile(`[^0-9]`).ReplaceAllString(s, ""))
	if err != nil {
		return -1
	}
	return n
}
