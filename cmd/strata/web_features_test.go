package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// The dashboard's features past the basics (issue 18), each shown in the
// browser on the data seedWebData writes.

// webFrac is a value with more decimals than a person wants to read.
const webFrac = "0.333333333333"

// open loads u and waits for the element ready.
func (b *browser) open(t *testing.T, u string, ready string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, webWaitDefault)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS(ready))); err != nil {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('.panel-body, .meta')].map(e => e.innerText).join(' / ').slice(0, 600)`))
		t.Fatalf("open %s, waiting for %s: %v; the page shows:\n%s", u, ready, err, shown)
	}
}

// pollAcrossReload waits until expr is truthy on a page that reloads
// meanwhile: evaluations that fail because the page is going away are
// retried.
func (b *browser) pollAcrossReload(t *testing.T, expr string) {
	t.Helper()
	deadline := time.Now().Add(webWaitDefault)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("Boolean("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// plotInfo is what a chart reports about its scales.
type plotInfo struct {
	XMin   float64  `json:"xmin"`
	XMax   float64  `json:"xmax"`
	YMin   float64  `json:"ymin"`
	YMax   float64  `json:"ymax"`
	YTicks []string `json:"yticks"`
	Height float64  `json:"height"`
	Mode   string   `json:"mode"`
}

func plot(t *testing.T, b *browser, panel string) plotInfo {
	t.Helper()
	return evalJS[plotInfo](t, b, fmt.Sprintf(`(() => { const u = document.querySelector('[data-panel=%s] .plot').uplot;
		return {xmin: u.scales.x.min, xmax: u.scales.x.max, ymin: u.scales.y.min, ymax: u.scales.y.max,
			yticks: u.axes[1]._values || [], height: document.querySelector('[data-panel=%s] .uplot').offsetHeight,
			mode: document.querySelector('[data-panel=%s] .chart').dataset.mode}; })()`, panel, panel, panel))
}

func testWebRangeAxis(t *testing.T, b *browser, s *testServer, artifacts string, now time.Time) {
	// Seven days picked, 50 minutes of data: the axis spans the seven days.
	b.open(t, s.url+"/?range=7d&g0.expr=cpu_usage", `[data-panel=p0][data-drawn="3"]`)
	p := plot(t, b, "p0")
	week := 7 * 24 * time.Hour.Seconds()
	if span := p.XMax - p.XMin; math.Abs(span-week) > 120 {
		t.Errorf("x axis spans %.0f s, want the 7 days picked (%.0f s)", span, week)
	}
	if d := math.Abs(p.XMax - float64(now.Unix())); d > 600 {
		t.Errorf("x axis ends %.0f s away from now", d)
	}
	b.screenshot(t, artifacts, "range-7d.png")

	// A series with one sample: drawn as a point where the sample is.
	b.open(t, s.url+"/?range=7d&step=30m&g0.expr=lone_v", `[data-panel=p0][data-drawn="1"]`)
	px := evalJS[struct {
		RGBA  []int   `json:"rgba"`
		T     float64 `json:"t"`
		Alone int     `json:"alone"`
	}](t, b, `(() => { const u = document.querySelector('[data-panel=p0] .plot').uplot;
		const i = u.data[1].findIndex(v => v != null);
		const x = Math.round(u.valToPos(u.data[0][i], 'x', true)), y = Math.round(u.valToPos(u.data[1][i], 'y', true));
		return {rgba: [...u.ctx.getImageData(x, y, 1, 1).data], t: u.data[0][i], alone: u.data[1].filter(v => v != null).length}; })()`)
	if px.Alone != 1 {
		t.Fatalf("lone_v has %d samples on the chart, want 1", px.Alone)
	}
	// The first palette colour, #4e79a7.
	if len(px.RGBA) != 4 || px.RGBA[3] < 200 || math.Abs(float64(px.RGBA[0]-0x4e))+math.Abs(float64(px.RGBA[1]-0x79))+math.Abs(float64(px.RGBA[2]-0xa7)) > 60 {
		t.Errorf("the canvas at the lone sample is %v, want the series' colour #4e79a7", px.RGBA)
	}
	b.screenshot(t, artifacts, "lone-sample.png")
}

// wrappedWords returns the words (runs without white space) under the
// elements matching selector that the page breaks across lines.
const wrappedWordsJS = `((sel) => {
	const out = [];
	for (const root of document.querySelectorAll(sel)) {
		const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
		for (let n = walk.nextNode(); n; n = walk.nextNode()) {
			const re = /\S+/g; let m;
			while ((m = re.exec(n.data))) {
				const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
				const tops = new Set([...r.getClientRects()].filter(c => c.width > 0).map(c => Math.round(c.top)));
				if (tops.size > 1) out.push(m[0]);
			}
		}
	}
	return out; })`

func testWebRoundingAndWraps(t *testing.T, b *browser, s *testServer, artifacts string) {
	b.open(t, s.url+"/?range=1h&g0.expr=frac_v&g0.view=table&g1.expr=cpu_usage&g1.view=table", `[data-panel=p1] table.result tr.row`)
	b.poll(t, `document.querySelector('[data-panel=p0] table.result tr.row')`)
	cells := evalJS[[]string](t, b, `[...document.querySelector('[data-panel=p0] table.result tr.row').querySelectorAll('td.num')].slice(0, 3).map(c => c.textContent + '|' + c.title)`)
	// Last (with the exact value as its title), min, max.
	if len(cells) != 3 || cells[0] != "0.33333|"+webFrac || !strings.HasPrefix(cells[1], "0.33333|") || !strings.HasPrefix(cells[2], "0.33333|") {
		t.Errorf("table cells %q, want 0.33333 shown and the exact %s in the title", cells, webFrac)
	}
	// Open the samples of a row: rounded too.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`[data-panel=p0] table.result tr.row`)), chromedp.WaitVisible(chromedp.CSS(`[data-panel=p0] tr.raw`)))
	if got := evalJS[string](t, b, `document.querySelector('[data-panel=p0] table.samples td.num').textContent`); got != "0.33333" {
		t.Errorf("a raw sample shows %q, want 0.33333", got)
	}

	// A narrow window: no number and no name is broken inside a word, on
	// the graph (tables and legend), explore and status pages.
	b.do(t, webWaitDefault, chromedp.EmulateViewport(560, 900))
	defer b.do(t, webWaitDefault, chromedp.EmulateViewport(webWindowWidth, webWindowHeight))
	check := func(page, sel string) {
		t.Helper()
		if w := evalJS[[]string](t, b, wrappedWordsJS+"("+strconv.Quote(sel)+")"); len(w) > 0 {
			t.Errorf("%s: words broken across lines: %q", page, w)
		}
	}
	check("graph tables", "table.result")
	b.screenshot(t, artifacts, "narrow-table.png")
	b.open(t, s.url+"/?range=1h&g0.expr=cpu_usage", `[data-panel=p0][data-drawn="3"]`)
	check("graph legend", ".legend-box, .meta")
	b.open(t, s.url+"/status", `[data-stat=head-series]`)
	b.poll(t, `(document.querySelector('[data-stat=ingest-rate]')?.textContent || '').includes('samples/s')`)
	check("status", ".status-grid, #config")
	b.screenshot(t, artifacts, "narrow-status.png")
	b.open(t, s.url+"/explore?metric=cpu_usage", `.metric-detail .label-name`)
	check("explore", "main")
}

func testWebHeight(t *testing.T, b *browser, s *testServer, artifacts string) {
	b.open(t, s.url+"/?range=1h&height=420&g0.expr=cpu_usage", `[data-panel=p0][data-drawn="3"]`)
	if h := plot(t, b, "p0").Height; math.Abs(h-420) > 2 {
		t.Errorf("height=420 in the URL draws a chart %.0f px high", h)
	}
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`#height`), "600"), dispatchChange("#height"))
	b.poll(t, `Math.abs(document.querySelector('[data-panel=p0] .uplot').offsetHeight - 600) <= 2`)
	if q := evalJS[string](t, b, `location.search`); !strings.Contains(q, "height=600") {
		t.Errorf("after choosing 600 px the URL is %s", q)
	}
	b.screenshot(t, artifacts, "height-600.png")
}

// dispatchChange fires the change event a person's choice in a select fires.
func dispatchChange(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event('change'))`, sel))
}

func testWebIngestRate(t *testing.T, b *browser, s *testServer, artifacts string, now time.Time) {
	// A writer pushes a batch every 2.5 s while the page reads every second:
	// a rate over one read's interval would show 0 between batches.
	const batch, every = 500, 2500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; ; k++ {
			var sb strings.Builder
			for i := range batch {
				fmt.Fprintf(&sb, "steady,i=i%d v=%d %d\n", i, k, now.Unix()+int64(k))
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/write?precision=s", strings.NewReader(sb.String()))
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
	defer func() { cancel(); <-done }()

	b.open(t, s.url+"/status?refresh=1s", `[data-stat=ingest-rate]`)
	b.poll(t, `(document.querySelector('[data-stat=ingest-rate]')?.textContent || '').includes('samples/s')`)
	var shown []string
	for range 7 {
		reads := evalJS[string](t, b, `document.querySelector('.page-head .muted').dataset.reads`)
		b.poll(t, fmt.Sprintf(`document.querySelector('.page-head .muted').dataset.reads !== %q`, reads))
		shown = append(shown, evalJS[string](t, b, `document.querySelector('[data-stat=ingest-rate]').textContent`))
	}
	for _, v := range shown {
		rate, err := strconv.ParseFloat(strings.ReplaceAll(strings.TrimSuffix(v, " samples/s"), ",", ""), 64)
		if err != nil || rate <= 0 || rate > 4*batch/every.Seconds() {
			t.Errorf("ingest rate shown over seven reads %q: want every one above 0 and near %.0f samples/s", shown, batch/every.Seconds())
			break
		}
	}
	t.Logf("ingest rate shown over seven reads a second apart, batches of %d every %s: %q", batch, every, shown)
	b.screenshot(t, artifacts, "status-rate.png")
}

// rangeStats computes min, max, mean and last of each series of the range
// query the panel ran, by series.
func rangeStats(t *testing.T, b *browser, s *testServer, panel string) map[string][4]float64 {
	t.Helper()
	ds := evalJS[map[string]string](t, b, fmt.Sprintf(`({...document.querySelector('[data-panel=%s]').dataset})`, panel))
	var d struct {
		Result []struct {
			Metric map[string]string
			Values [][2]any
		}
	}
	apiGet(t, s, "/api/v1/query_range", url.Values{"query": {ds["query"]}, "start": {ds["start"]}, "end": {ds["end"]}, "step": {ds["step"]}}, &d)
	out := map[string][4]float64{}
	for _, r := range d.Result {
		st := [4]float64{math.Inf(1), math.Inf(-1), 0, 0}
		for _, v := range r.Values {
			x, _ := strconv.ParseFloat(v[1].(string), 64)
			st[0], st[1], st[2], st[3] = math.Min(st[0], x), math.Max(st[1], x), st[2]+x, x
		}
		st[2] /= float64(len(r.Values))
		out[seriesString(r.Metric)] = st
	}
	return out
}

func testWebLegendStats(t *testing.T, b *browser, s *testServer, artifacts string) {
	b.open(t, s.url+"/?range=1h&g0.expr=cpu_usage", `[data-panel=p0][data-drawn="3"]`)
	want := rangeStats(t, b, s, "p0")
	rows := evalJS[[][]string](t, b, `[...document.querySelectorAll('[data-panel=p0] .legend li')].map(li =>
		[li.querySelector('.legend-label').textContent, ...['min', 'max', 'avg', 'last'].map(k => li.querySelector('[data-stat=' + k + ']').textContent)])`)
	head := evalJS[string](t, b, `document.querySelector('[data-panel=p0] .legend-head').textContent`)
	if head != "Seriesminmaxavglast" {
		t.Errorf("legend header %q", head)
	}
	if len(rows) != len(want) || len(rows) != webHosts {
		t.Fatalf("legend rows %q, the API %d series", rows, len(want))
	}
	for _, r := range rows {
		w, ok := want[r[0]]
		if !ok {
			t.Fatalf("legend row %q is no series of the API's", r[0])
		}
		for i, name := range []string{"min", "max", "avg", "last"} {
			got, err := strconv.ParseFloat(r[i+1], 64)
			if err != nil || math.Abs(got-w[i]) > 1e-4*math.Max(1, math.Abs(w[i])) {
				t.Errorf("%s %s: legend %q, the API's samples give %g", r[0], name, r[i+1], w[i])
			}
		}
	}
	b.screenshot(t, artifacts, "legend-stats.png")
}

func testWebLegendScales(t *testing.T, b *browser, s *testServer, artifacts string, start time.Time) {
	end := start.Unix() + int64((renderPoints-1)*renderStepSecs)
	b.do(t, webWaitRender, chromedp.Navigate(fmt.Sprintf("%s/?from=%d&to=%d&g0.expr=render_load", s.url, start.Unix(), end)),
		chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn]`)))
	box := evalJS[struct {
		Scroll, Client float64
	}](t, b, `(() => { const l = document.querySelector('[data-panel=p0] .legend'); return {Scroll: l.scrollHeight, Client: l.clientHeight}; })()`)
	if box.Client > 300 || box.Scroll <= box.Client {
		t.Errorf("the legend of %d series is %.0f px high of %.0f px of rows: want a box under 300 px that scrolls", renderSeries, box.Client, box.Scroll)
	}
	// Hovering a legend row far down highlights that series on the chart.
	// The mouse leaves the chart first: the chart's focus scrolls the legend.
	const row = 150
	b.do(t, webWaitDefault, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1))
	b.poll(t, `!document.querySelector('[data-panel=p0] .legend li.focus')`)
	r := evalJS[struct{ X, Y float64 }](t, b, fmt.Sprintf(`(() => { const li = document.querySelector('[data-panel=p0] .legend li:nth-child(%d)');
		li.scrollIntoView({block: 'center'}); const r = li.getBoundingClientRect(); return {X: r.left + 40, Y: r.top + r.height / 2}; })()`, row))
	b.do(t, webWaitDefault, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r.X, r.Y-4),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r.X, r.Y))
	b.poll(t, fmt.Sprintf(`document.querySelector('[data-panel=p0] .legend li:nth-child(%d)').classList.contains('focus')`, row))
	alpha := evalJS[[]float64](t, b, fmt.Sprintf(`(() => { const u = document.querySelector('[data-panel=p0] .plot').uplot; return [u.series[%d].alpha, u.series[1].alpha]; })()`, row))
	if alpha[0] != 1 || alpha[1] >= 1 {
		t.Errorf("hovering legend row %d: series alpha %v, want it 1 and the others faded", row, alpha)
	}
	b.screenshot(t, artifacts, "legend-hover.png")
	// Hovering the chart marks the nearest series' row.
	b.hover(t, "[data-panel=p0]", 0.4)
	b.poll(t, `(() => { const f = document.querySelector('[data-panel=p0] .legend li.focus .legend-label');
		return f && f.textContent === document.querySelector('[data-panel=p0] .tooltip-row.nearest .tooltip-label').textContent; })()`)
}

func testWebZoom(t *testing.T, b *browser, s *testServer, artifacts string) {
	b.open(t, s.url+"/?range=1h&g0.expr=cpu_usage", `[data-panel=p0][data-drawn="3"]`)
	before := plot(t, b, "p0")
	r := evalJS[struct{ Left, Top, Width, Height float64 }](t, b, `(() => { const o = document.querySelector('[data-panel=p0] .u-over');
		o.scrollIntoView({block: 'center'}); const r = o.getBoundingClientRect(); return {Left: r.left, Top: r.top, Width: r.width, Height: r.height}; })()`)
	y := r.Top + r.Height/2
	b.do(t, webWaitDefault,
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r.Left+r.Width*0.5, y),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, r.Left+r.Width*0.5, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r.Left+r.Width*0.65, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, r.Left+r.Width*0.75, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, r.Left+r.Width*0.75, y, chromedp.ButtonLeft))
	b.poll(t, `new URLSearchParams(location.search).has('from')`)
	q := urlQuery(t, b)
	from, to := num(t, q.Get("from")), num(t, q.Get("to"))
	wantFrom := before.XMin + (before.XMax-before.XMin)*0.5
	wantTo := before.XMin + (before.XMax-before.XMin)*0.75
	span := before.XMax - before.XMin
	if math.Abs(from-wantFrom) > span*0.02 || math.Abs(to-wantTo) > span*0.02 {
		t.Fatalf("dragged over 50%%-75%% of [%.0f, %.0f]: the range is [%.0f, %.0f]", before.XMin, before.XMax, from, to)
	}
	b.poll(t, fmt.Sprintf(`(() => { const u = document.querySelector('[data-panel=p0] .plot').uplot; return u.scales.x.min === %v && u.scales.x.max === %v; })()`, from, to))
	b.screenshot(t, artifacts, "zoomed.png")

	// Zoom out: twice the span, around the same middle (it is in the past).
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`#zoom-out`)))
	b.poll(t, fmt.Sprintf(`new URLSearchParams(location.search).get('from') !== %q`, q.Get("from")))
	q2 := urlQuery(t, b)
	from2, to2 := num(t, q2.Get("from")), num(t, q2.Get("to"))
	if got, want := to2-from2, 2*(to-from); math.Abs(got-want) > 2 {
		t.Errorf("zoom out of %.0f s shows %.0f s, want %.0f", to-from, got, want)
	}
	// Back: the zoomed range, then the hour the page started with.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`#back`)))
	b.poll(t, fmt.Sprintf(`new URLSearchParams(location.search).get('from') === %q`, q.Get("from")))
	b.poll(t, fmt.Sprintf(`document.querySelector('[data-panel=p0] .plot').uplot.scales.x.min === %v`, from))
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`#back`)))
	b.poll(t, `new URLSearchParams(location.search).get('range') === '1h' && !new URLSearchParams(location.search).has('from')`)
	if !evalJS[bool](t, b, `document.querySelector('#back').disabled`) {
		t.Error("Back is enabled with no zoom left to undo")
	}
}

func urlQuery(t *testing.T, b *browser) url.Values {
	t.Helper()
	q, err := url.ParseQuery(strings.TrimPrefix(evalJS[string](t, b, `location.search`), "?"))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return v
}

// setTimezone emulates the system's time zone; "" ends it.
func setTimezone(tz string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: tz})
		return err
	})
}

func testWebUTC(t *testing.T, b *browser, s *testServer, artifacts string) {
	// India is 5:30 from UTC: the minutes tell the zones apart.
	loc, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip("no time zone data:", err) // the emulation below needs none; the expectation does
	}
	b.do(t, webWaitDefault, setTimezone("Asia/Kolkata"))
	defer b.do(t, webWaitDefault, setTimezone(""))
	shows := func(want *time.Location, suffix string) {
		t.Helper()
		b.hover(t, "[data-panel=p0]", 0.5)
		tt := evalJS[[2]string](t, b, `[document.querySelector('[data-panel=p0] .tooltip').dataset.t, document.querySelector('[data-panel=p0] .tooltip-time').textContent]`)
		at := time.Unix(int64(num(t, tt[0])), 0).In(want)
		if !strings.Contains(tt[1], at.Format("03:04:05")) && !strings.Contains(tt[1], at.Format("15:04:05")) || !strings.HasSuffix(tt[1], suffix) {
			t.Errorf("tooltip time %q for %s, want %s%s", tt[1], tt[0], at.Format("15:04:05"), suffix)
		}
	}
	b.open(t, s.url+"/?range=1h&g0.expr=cpu_usage", `[data-panel=p0][data-drawn="3"]`)
	shows(loc, "M") // AM/PM in en-US, and no UTC
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`#tz`), "utc"), dispatchChange("#tz"))
	b.poll(t, `new URLSearchParams(location.search).get('tz') === 'utc'`)
	b.do(t, webWaitDefault, chromedp.WaitReady(chromedp.CSS(`[data-panel=p0] .u-over`)))
	shows(time.UTC, " UTC")
	b.screenshot(t, artifacts, "utc.png")
	// The link keeps the choice.
	b.do(t, webWaitDefault, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn="3"]`)))
	shows(time.UTC, " UTC")
}

func testWebUnitsAndModes(t *testing.T, b *browser, s *testServer, artifacts string) {
	// Bytes: axis, tooltip and legend in binary units.
	b.open(t, s.url+"/?range=1h&g0.expr=mem_used_bytes&g1.expr=cpu_usage", `[data-panel=p1][data-drawn="3"]`)
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`[data-panel=p0] select.panel-unit`), "bytes"), dispatchChange(`[data-panel=p0] select.panel-unit`))
	b.poll(t, `new URLSearchParams(location.search).get('g0.unit') === 'bytes'`)
	b.do(t, webWaitDefault, chromedp.WaitReady(chromedp.CSS(`[data-panel=p0] .u-over`)))
	p := plot(t, b, "p0")
	if len(p.YTicks) < 2 {
		t.Fatalf("y ticks %q", p.YTicks)
	}
	for _, tick := range p.YTicks {
		if !strings.HasSuffix(tick, " GiB") && !strings.HasSuffix(tick, " MiB") {
			t.Errorf("y ticks in bytes %q, want GiB or MiB", p.YTicks)
			break
		}
	}
	// Each label says where its tick is, and the ticks read evenly spaced.
	splits := evalJS[[]float64](t, b, `document.querySelector('[data-panel=p0] .plot').uplot.axes[1]._splits`)
	units := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	var read []float64
	for i, tick := range p.YTicks {
		n, unit, _ := strings.Cut(tick, " ")
		v, err := strconv.ParseFloat(n, 64)
		if err != nil || i >= len(splits) || math.Abs(v*units[unit]-splits[i]) > 1e-9*splits[i]+1e-6 {
			t.Errorf("tick %q is at %v bytes", tick, splits)
			break
		}
		read = append(read, v*units[unit])
	}
	for i := 2; i < len(read); i++ {
		if d0, d := read[1]-read[0], read[i]-read[i-1]; math.Abs(d-d0) > 1e-9*math.Abs(d0) {
			t.Errorf("y ticks %q are not evenly spaced", p.YTicks)
			break
		}
	}
	seen := map[string]bool{}
	for _, tick := range p.YTicks {
		if seen[tick] {
			t.Errorf("y ticks repeat a label: %q", p.YTicks)
		}
		seen[tick] = true
	}
	if last := evalJS[string](t, b, `document.querySelector('[data-panel=p0] .legend [data-stat=last]').textContent`); !regexp.MustCompile(`^1(\.\d+)? GiB$`).MatchString(last) {
		t.Errorf("legend last of ~1 GiB in bytes: %q", last)
	}
	// Percent: the tick labels carry the unit.
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`[data-panel=p1] select.panel-unit`), "percent"), dispatchChange(`[data-panel=p1] select.panel-unit`))
	b.poll(t, `(document.querySelector('[data-panel=p1] .plot').uplot.axes[1]._values || []).every(v => v.endsWith('%'))`)
	lines := plot(t, b, "p1")

	// Stacked: the top of the stack is the sum, the tooltip the samples.
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`[data-panel=p1] select.panel-mode`), "stacked"), dispatchChange(`[data-panel=p1] select.panel-mode`))
	b.poll(t, `document.querySelector('[data-panel=p1] .chart')?.dataset.mode === 'stacked'`)
	stacked := plot(t, b, "p1")
	sum := evalJS[float64](t, b, `(() => { const u = document.querySelector('[data-panel=p1] .plot').uplot; return Math.max(...u.data[3].filter(v => v != null)); })()`)
	want := rangeStats(t, b, s, "p1")
	var maxSum float64
	for _, st := range want {
		maxSum += st[1]
	}
	if stacked.YMax < sum || sum < lines.YMax || stacked.YMin > 0 || sum > maxSum+1e-9 {
		t.Errorf("stacked: top of the stack %g (at most %g, the sum of maxima), y scale [%g, %g]; lines y max %g", sum, maxSum, stacked.YMin, stacked.YMax, lines.YMax)
	}
	b.hover(t, "[data-panel=p1]", 0.6)
	tip := evalJS[struct {
		T    string      `json:"t"`
		Rows [][2]string `json:"rows"`
	}](t, b, `(() => { const tt = document.querySelector('[data-panel=p1] .tooltip');
		return {t: tt.dataset.t, rows: [...tt.querySelectorAll('.tooltip-row')].map(r => [r.querySelector('.tooltip-label').textContent, r.querySelector('.tooltip-value').title])}; })()`)
	vals := instantValues(t, s, "cpu_usage", num(t, tip.T))
	for _, r := range tip.Rows {
		checkValue(t, "stacked tooltip "+r[0], r[1], vals[r[0]])
	}
	b.screenshot(t, artifacts, "stacked-percent.png")

	for _, mode := range []string{"area", "bars"} {
		b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`[data-panel=p1] select.panel-mode`), mode), dispatchChange(`[data-panel=p1] select.panel-mode`))
		b.poll(t, fmt.Sprintf(`document.querySelector('[data-panel=p1] .chart')?.dataset.mode === %q`, mode))
		p := plot(t, b, "p1")
		if p.YMin > 0 || p.YMax < lines.YMax*0.99 {
			t.Errorf("%s: y scale [%g, %g], want it from 0 to the data's maximum %g", mode, p.YMin, p.YMax, lines.YMax)
		}
		// The series are filled: the middle of the plot, under every line, is painted.
		filled := evalJS[int](t, b, `(() => { const u = document.querySelector('[data-panel=p1] .plot').uplot;
			const x = Math.round(u.bbox.left + u.bbox.width / 2), y = Math.round(u.valToPos(5, 'y', true));
			return u.ctx.getImageData(x - 20, y, 40, 1).data.filter((v, i) => i % 4 === 3 && v > 0).length; })()`)
		if filled < 10 {
			t.Errorf("%s: %d of 40 pixels under the data are painted", mode, filled)
		}
		b.screenshot(t, artifacts, "mode-"+mode+".png")
		if q := urlQuery(t, b); q.Get("g1.mode") != mode {
			t.Errorf("URL g1.mode=%q, want %s", q.Get("g1.mode"), mode)
		}
	}
}

func testWebPromLinks(t *testing.T, b *browser, s *testServer, artifacts string, now time.Time) {
	// A link from Prometheus' own UI: table tab, 2h ending 10 minutes ago
	// (in Prometheus' UTC format), a 30 s step, stacked.
	end := now.Add(-10 * time.Minute).UTC()
	q := url.Values{"g0.expr": {"cpu_usage"}, "g0.tab": {"1"}, "g0.range_input": {"2h"}, "g0.end_input": {end.Format("2006-01-02 15:04:05")},
		"g0.step_input": {"30"}, "g0.stacked": {"1"}, "g1.expr": {"mem_used_bytes"}, "g1.tab": {"graph"}, "g1.display_mode": {"lines"},
		"g1.range_input": {"30m"}}
	b.open(t, s.url+"/?"+q.Encode(), `[data-panel=p0] table.result tr.row`)
	b.poll(t, `document.querySelector('[data-panel=p1][data-drawn="1"]')`)
	ds := evalJS[map[string]string](t, b, `({...document.querySelector('[data-panel=p0]').dataset})`)
	if num(t, ds["step"]) != 30 || num(t, ds["end"]) != float64(end.Unix()/30*30) || num(t, ds["start"]) != float64((end.Unix()-7200)/30*30) {
		t.Errorf("the panel queried %v, want 2h to %d at a 30 s step", ds, end.Unix())
	}
	if mode := evalJS[string](t, b, `document.querySelector('[data-panel=p0] select.panel-mode').value`); mode != "stacked" {
		t.Errorf("g0.stacked=1 shows mode %q", mode)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll('[data-panel=p0] table.result tr.row').length`); n != webHosts {
		t.Errorf("g0.tab=1: table of %d rows, want %d", n, webHosts)
	}
	if got := urlQuery(t, b); got.Get("to") != strconv.FormatInt(end.Unix(), 10) || got.Get("from") != strconv.FormatInt(end.Unix()-7200, 10) || got.Get("step") != "30" {
		t.Errorf("the page's own URL after a Prometheus link: %v", got)
	}
	// The second panel has a range of its own: 30 minutes ending now.
	p1 := evalJS[map[string]string](t, b, `({...document.querySelector('[data-panel=p1]').dataset})`)
	if span, end := num(t, p1["end"])-num(t, p1["start"]), num(t, p1["end"]); span != 1800 || math.Abs(end-float64(time.Now().Unix())) > 120 {
		t.Errorf("g1.range_input=30m: the panel queried %v, want the last 30 minutes", p1)
	}
	if badge := evalJS[string](t, b, `document.querySelector('[data-panel=p1] .own-range')?.textContent || ''`); !strings.HasPrefix(badge, "own range: 30m") {
		t.Errorf("the panel with its own range says %q", badge)
	}
	if got := urlQuery(t, b).Get("g1.range"); got != "30m" {
		t.Errorf("the page's URL keeps g1.range=%q, want 30m", got)
	}
	b.screenshot(t, artifacts, "prometheus-link.png")
	// It can follow the page's range again.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`[data-panel=p1] .own-range-clear`)))
	b.poll(t, fmt.Sprintf(`document.querySelector('[data-panel=p1]').dataset.end === %q && !document.querySelector('[data-panel=p1] .own-range')`, ds["end"]))
	if urlQuery(t, b).Has("g1.range") {
		t.Error("g1.range stays in the URL after the panel follows the page's range")
	}

	// A relative range_input alone sets the range.
	b.open(t, s.url+"/?g0.expr=cpu_usage&g0.range_input=3h&g0.tab=0", `[data-panel=p0][data-drawn="3"]`)
	if got := urlQuery(t, b).Get("range"); got != "3h" {
		t.Errorf("g0.range_input=3h: range=%q", got)
	}
}

// testWebHistograms: a query answering native histograms says what to
// chart instead, and breaks nothing (the console check follows).
func testWebHistograms(t *testing.T, b *browser, s *testServer, artifacts string, now time.Time) {
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "hx_web_seconds"}, {Name: "host", Value: "h1"}}}}}
	for i := int64(0); i < 30; i++ {
		ts := now.Add(time.Duration(i-30) * time.Minute)
		req.Timeseries[0].Histograms = append(req.Timeseries[0].Histograms, prompb.FromIntHistogram(ts.UnixMilli(), hxHistogram(i+1)))
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if code, body := s.post("/api/v1/write", "application/x-protobuf", snappy.Encode(nil, raw)); code != http.StatusNoContent {
		t.Fatalf("remote write: %d %s", code, body)
	}
	// The raw counter histograms draw as a heatmap of bucket rates; a
	// rate of them as one of their values; histogram_count as a line.
	b.open(t, s.url+"/?range=1h&g0.expr=hx_web_seconds&g1.expr=histogram_count(rate(hx_web_seconds[5m]))&g2.expr=rate(hx_web_seconds[5m])",
		`[data-panel=p1][data-drawn="1"]`)
	for _, p := range []struct{ panel, kind string }{{"p0", "rate"}, {"p2", "value"}} {
		sel := `[data-panel=` + p.panel + `] canvas.heatmap`
		b.poll(t, `document.querySelector('`+sel+`')`)
		got := evalJS[map[string]string](t, b, `({...document.querySelector('`+sel+`').dataset})`)
		// hxHistogram has 3 buckets; every step of the 30 minutes of data
		// has some of them.
		if got["buckets"] != "3" || num(t, got["cells"]) < 30 || got["kind"] != p.kind || num(t, got["max"]) <= 0 {
			t.Errorf("%s heatmap: %v, want 3 buckets of %s, at least 30 cells filled", p.panel, got, p.kind)
		}
		if w := evalJS[int](t, b, `document.querySelector('`+sel+`').getBoundingClientRect().width`); w < 300 {
			t.Errorf("%s heatmap %d px wide", p.panel, w)
		}
	}
	// hxHistogram(i) adds one observation to each bucket a minute: each
	// bucket's rate is 1/60 per second where the counters moved.
	if max := evalJS[string](t, b, `document.querySelector('[data-panel=p0] canvas.heatmap').dataset.max`); num(t, max) < 1.0/60-1e-9 {
		t.Errorf("p0 heatmap: darkest cell %s/s, want at least 1/60", max)
	}
	if w := evalJS[string](t, b, `document.querySelector('[data-panel=p0] .heatmap-hint').textContent`); !strings.HasPrefix(w, "1 native histogram series") || !strings.Contains(w, "histogram_quantile(0.9, rate(hx_web_seconds[5m]))") {
		t.Errorf("the histogram panel says %q", w)
	}
	if n := evalJS[int](t, b, `document.querySelectorAll('[data-panel=p0] .u-over, [data-panel=p0] p.empty').length`); n != 0 {
		t.Errorf("the histogram panel shows %d line charts or 'no data' notes, want none", n)
	}
	if w := evalJS[string](t, b, `document.querySelector('[data-panel=p2] .heatmap-hint').textContent`); !strings.Contains(w, "histogram_quantile(0.9, rate(hx_web_seconds[5m]))") {
		t.Errorf("the rate panel says %q", w)
	}
	b.screenshot(t, artifacts, "histograms.png")
	// The table shows the last count and sum.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`[data-panel=p0] button[data-view=table]`)))
	b.poll(t, `document.querySelector('[data-panel=p0] tr.row.histogram')`)
	want := instantValues(t, s, "histogram_count(hx_web_seconds)", num(t, evalJS[string](t, b, `document.querySelector('[data-panel=p0] tr.row.histogram').dataset.t`)))
	row := evalJS[string](t, b, `document.querySelector('[data-panel=p0] tr.row.histogram td.num').textContent`)
	if len(want) != 1 || !strings.HasPrefix(row, "count ") || !strings.Contains(row, ", sum ") {
		t.Errorf("histogram table row %q; the API's count %v", row, want)
	}
	for _, v := range want {
		if !strings.HasPrefix(row, "count "+v+",") {
			t.Errorf("histogram table row %q, want count %s", row, v)
		}
	}
	b.screenshot(t, artifacts, "histograms.png")
}

// putDashboard stores doc through the API.
func putDashboard(t *testing.T, s *testServer, id, token string, doc any) (int, string) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := s.call(http.MethodPut, "/api/v1/dashboards/"+id, token, b)
	return code, body
}

func testWebDashboards(t *testing.T, b *browser, s *testServer, artifacts string) {
	doc := map[string]any{
		"title":     "Hosts",
		"range":     "30m",
		"variables": []map[string]any{{"name": "host", "label": "host", "match": "cpu_usage"}},
		"panels": []map[string]any{
			{"title": "CPU of $host", "expr": `cpu_usage{host="$host"}`, "unit": "percent"},
			{"title": "Memory", "expr": "mem_used_bytes", "unit": "bytes", "mode": "area"},
		},
	}
	// Import it as JSON on the list page.
	js, _ := json.Marshal(doc)
	b.open(t, s.url+"/dashboards", `#import-text`)
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`#import-text`), string(js)),
		chromedp.Click(chromedp.CSS(`.dash-import button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.import-ok a`)))
	if got := evalJS[string](t, b, `document.querySelector('.import-ok').textContent`); !strings.Contains(got, "2 panels") {
		t.Errorf("import report %q", got)
	}
	var list []struct{ ID, Title string }
	apiGet(t, s, "/api/v1/dashboards", nil, &list)
	if len(list) != 1 || list[0].ID != "hosts" || list[0].Title != "Hosts" {
		t.Fatalf("the API lists %+v after the import", list)
	}
	b.poll(t, `[...document.querySelectorAll('table.dashboards a')].map(a => a.textContent).join() === 'Hosts'`)
	b.screenshot(t, artifacts, "dashboards-list.png")

	// Open it: the variable offers the label's values; the first is chosen.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`.import-ok a`)), chromedp.WaitReady(chromedp.CSS(`select[data-var=host]`)))
	b.poll(t, `document.querySelectorAll('select[data-var=host] option').length > 0`)
	var hosts []string
	apiGet(t, s, "/api/v1/label/host/values", url.Values{"match[]": {"cpu_usage"}}, &hosts)
	opts := evalJS[[]string](t, b, `[...document.querySelectorAll('select[data-var=host] option')].map(o => o.value)`)
	if strings.Join(opts, ",") != strings.Join(hosts, ",") {
		t.Errorf("$host offers %q, the API's values are %q", opts, hosts)
	}
	panelOf := func(i int) string {
		return evalJS[string](t, b, fmt.Sprintf(`document.querySelectorAll('section.panel')[%d].dataset.panel`, i))
	}
	p0, p1 := panelOf(0), panelOf(1)
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`select[data-var=host]`), "h2"), dispatchChange(`select[data-var=host]`))
	b.poll(t, fmt.Sprintf(`document.querySelector('[data-panel=%s]').dataset.query === 'cpu_usage{host="h2"}' && document.querySelector('[data-panel=%s][data-drawn="1"]')`, p0, p0))
	if l := evalJS[[]string](t, b, fmt.Sprintf(`[...document.querySelectorAll('[data-panel=%s] .legend-label')].map(e => e.textContent)`, p0)); len(l) != 1 || l[0] != `cpu_usage{dc="eu", host="h2"}` {
		t.Errorf("with $host=h2 the panel shows %q", l)
	}
	got := evalJS[[]string](t, b, fmt.Sprintf(`[document.querySelector('.dash-title').value, document.querySelector('[data-panel=%s] .panel-title').value,
		document.querySelector('[data-panel=%s] select.panel-unit').value, document.querySelector('[data-panel=%s] .chart').dataset.mode]`, p0, p0, p1))
	if strings.Join(got, "|") != "Hosts|CPU of $host|percent|area" {
		t.Errorf("dashboard shows %q", got)
	}
	q := urlQuery(t, b)
	if q.Get("id") != "hosts" || q.Get("var-host") != "h2" || q.Get("range") != "30m" {
		t.Errorf("the dashboard's URL %v lacks its id, variable or range", q)
	}
	b.screenshot(t, artifacts, "dashboard.png")

	// The link, opened afresh, shows the same.
	share := evalJS[string](t, b, `location.href`)
	b.open(t, share, `select[data-var=host] option`)
	b.poll(t, `document.querySelector('section.panel[data-drawn="1"]') && document.querySelector('section.panel').dataset.query === 'cpu_usage{host="h2"}'`)

	// Add a variable and a panel that uses it, title it, rename the
	// dashboard, save: the server has it all.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`#var-new`)),
		chromedp.SendKeys(chromedp.CSS(`#var-name`), "dc"), chromedp.SendKeys(chromedp.CSS(`#var-label`), "dc"),
		chromedp.SendKeys(chromedp.CSS(`#var-match`), "cpu_usage"), chromedp.Click(chromedp.CSS(`.var-form button[type=submit]`)))
	b.poll(t, `[...document.querySelectorAll('select[data-var=dc] option')].map(o => o.value).join() === 'eu'`)
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`button.add`)))
	p2 := panelOf(2)
	b.do(t, webWaitDefault,
		chromedp.SendKeys(chromedp.CSS(`[data-panel=`+p2+`] input.panel-title`), "Hosts in $dc"),
		chromedp.SetValue(chromedp.CSS(`[data-panel=`+p2+`] textarea`), `count(cpu_usage{dc="$dc"})`),
		chromedp.Focus(chromedp.CSS(`[data-panel=`+p2+`] textarea`)), pressEnter())
	b.poll(t, fmt.Sprintf(`document.querySelector('[data-panel=%s]').dataset.query === 'count(cpu_usage{dc="eu"})' && document.querySelector('[data-panel=%s][data-drawn="1"]')`, p2, p2))
	b.do(t, webWaitDefault,
		chromedp.SetValue(chromedp.CSS(`#dash-title`), "Hosts and more"),
		chromedp.Click(chromedp.CSS(`#dash-save`)))
	b.poll(t, `document.querySelector('.dash-status').textContent.startsWith('Saved')`)
	var saved struct {
		Title     string
		Variables []struct{ Name, Label, Match, Value string }
		Panels    []struct{ Title, Expr, Unit string }
	}
	apiGet(t, s, "/api/v1/dashboards/hosts", nil, &saved)
	if saved.Title != "Hosts and more" || len(saved.Panels) != 3 || saved.Panels[2].Expr != `count(cpu_usage{dc="$dc"})` ||
		saved.Panels[2].Title != "Hosts in $dc" || saved.Panels[0].Unit != "percent" || len(saved.Variables) != 2 ||
		saved.Variables[0].Value != "h2" || saved.Variables[1] != (struct{ Name, Label, Match, Value string }{"dc", "dc", "cpu_usage", "eu"}) {
		t.Errorf("saved dashboard %+v", saved)
	}
	b.screenshot(t, artifacts, "dashboard-edited.png")
	// Export: the JSON of what is saved.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`#dash-export`)), chromedp.WaitVisible(chromedp.CSS(`#export-text`)))
	var exported struct {
		Title  string
		Panels []struct{ Expr string }
	}
	if err := json.Unmarshal([]byte(evalJS[string](t, b, `document.querySelector('#export-text').value`)), &exported); err != nil ||
		exported.Title != saved.Title || len(exported.Panels) != 3 {
		t.Errorf("exported %+v (%v), saved %+v", exported, err, saved)
	}
}

func testWebGrafanaImport(t *testing.T, b *browser, s *testServer, artifacts string) {
	grafana := `{
	  "title": "Node overview", "schemaVersion": 39, "time": {"from": "now-1h", "to": "now"},
	  "templating": {"list": [
	    {"name": "ds", "type": "datasource", "query": "prometheus"},
	    {"name": "host", "type": "query", "includeAll": true, "current": {"value": "$__all"},
	     "query": {"query": "label_values(cpu_usage, host)", "refId": "A"}}]},
	  "panels": [
	    {"type": "row", "title": "CPU", "gridPos": {"x": 0, "y": 0}, "panels": []},
	    {"type": "timeseries", "title": "CPU by host", "gridPos": {"x": 0, "y": 1, "w": 12, "h": 8},
	     "fieldConfig": {"defaults": {"unit": "percent", "custom": {"stacking": {"mode": "normal"}}}},
	     "targets": [{"expr": "avg by (host) (rate(cpu_usage{host=~\"$host\"}[$__rate_interval]) * 0 + cpu_usage{host=~\"$host\"})", "refId": "A"}]},
	    {"type": "stat", "title": "Uptime", "gridPos": {"x": 0, "y": 9}, "targets": [{"expr": "up"}]},
	    {"type": "graph", "title": "Memory", "gridPos": {"x": 12, "y": 1, "w": 12, "h": 8}, "fill": 0, "yaxes": [{"format": "bytes"}, {}],
	     "targets": [{"expr": "mem_used_bytes", "refId": "A"}]},
	    {"type": "text", "title": "Notes", "gridPos": {"x": 12, "y": 9}}]}`
	b.open(t, s.url+"/dashboards", `#import-text`)
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`#import-text`), grafana),
		chromedp.Click(chromedp.CSS(`.dash-import button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.import-ok a`)))
	skipped := evalJS[[]string](t, b, `[...document.querySelectorAll('.import-skipped li')].map(li => li.textContent)`)
	if len(skipped) != 2 || !strings.HasPrefix(skipped[0], "Uptime — stat") || !strings.HasPrefix(skipped[1], "Notes — text") {
		t.Errorf("unsupported panels listed: %q, want Uptime (stat) and Notes (text)", skipped)
	}
	b.screenshot(t, artifacts, "grafana-import.png")
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`.import-ok a`)), chromedp.WaitReady(chromedp.CSS(`section.panel`)))
	// $host is All: every host; $__rate_interval is a duration.
	b.poll(t, `document.querySelector('section.panel[data-drawn="3"]')`)
	info := evalJS[[]string](t, b, `[...document.querySelectorAll('section.panel')].map(p => [p.querySelector('.panel-title').value,
		p.querySelector('select.panel-unit').value, p.querySelector('select.panel-mode').value].join('|'))`)
	if strings.Join(info, ",") != "CPU by host|percent|stacked,Memory|bytes|lines" {
		t.Errorf("imported panels %q", info)
	}
	// Grafana put them side by side, half the width each: so does Strata.
	boxes := evalJS[[][3]float64](t, b, `[...document.querySelectorAll('section.panel'), document.querySelector('.panels')].map(e => {
		const r = e.getBoundingClientRect(); return [r.left, r.top, r.width]; })`)
	if len(boxes) != 3 || boxes[0][1] != boxes[1][1] || boxes[1][0] <= boxes[0][0] || math.Abs(boxes[0][2]-boxes[2][2]/2) > 20 || math.Abs(boxes[1][2]-boxes[2][2]/2) > 20 {
		t.Errorf("panels at (left, top, width) %v in a row %v: want two side by side, half the width each", boxes[:len(boxes)-1], boxes[len(boxes)-1])
	}
	if w := evalJS[[]string](t, b, `[...document.querySelectorAll('section.panel select.panel-width')].map(s => s.value)`); strings.Join(w, ",") != "12,12" {
		t.Errorf("panel widths %q, want 12,12", w)
	}
	query := evalJS[string](t, b, `document.querySelector('section.panel').dataset.query`)
	if strings.Contains(query, "$") || !strings.Contains(query, `host=~".*"`) {
		t.Errorf("the first panel ran %q: variables left or All not .*", query)
	}
	if q := urlQuery(t, b); q.Get("range") != "1h" || q.Get("var-host") != "All" {
		t.Errorf("URL %v, want the dashboard's 1h and var-host=All", q)
	}
	b.screenshot(t, artifacts, "grafana-dashboard.png")
}

// TestWebDashboardsAPI stores, lists, reads and deletes dashboards over
// HTTP, with auth on: reading takes the read token, changing the write
// token.
func TestWebDashboardsAPI(t *testing.T) {
	s := startServer(t, "", "--auth.read-token", "r-secret", "--auth.write-token", "w-secret")
	doc := map[string]any{"title": "Ops", "panels": []map[string]string{{"expr": "up"}}}
	if code, body := putDashboard(t, s, "ops", "r-secret", doc); code != http.StatusForbidden {
		t.Errorf("PUT with the read token: %d %s, want 403", code, body)
	}
	if code, body := putDashboard(t, s, "ops", "", doc); code != http.StatusUnauthorized {
		t.Errorf("PUT without a token: %d %s, want 401", code, body)
	}
	if code, body := putDashboard(t, s, "ops", "w-secret", doc); code != http.StatusOK {
		t.Fatalf("PUT with the write token: %d %s", code, body)
	}
	for _, c := range []struct {
		method, path, token string
		body                string
		code                int
		has                 string
	}{
		{http.MethodGet, "/api/v1/dashboards", "", "", 401, "unauthorized"},
		{http.MethodGet, "/api/v1/dashboards", "r-secret", "", 200, `"id":"ops","title":"Ops"`},
		{http.MethodGet, "/api/v1/dashboards/ops", "r-secret", "", 200, `"data":{"panels":[{"expr":"up"}],"title":"Ops"}`},
		{http.MethodGet, "/api/v1/dashboards/nope", "r-secret", "", 404, "not_found"},
		{http.MethodGet, "/api/v1/dashboards/..%2Fx", "r-secret", "", 400, "bad document id"},
		{http.MethodPut, "/api/v1/dashboards/Bad.Id", "w-secret", "{}", 400, "bad document id"},
		{http.MethodPut, "/api/v1/dashboards/x", "w-secret", "[1]", 400, "not a JSON object"},
		{http.MethodDelete, "/api/v1/dashboards/ops", "r-secret", "", 403, "forbidden"},
		{http.MethodDelete, "/api/v1/dashboards/ops", "w-secret", "", 200, "success"},
		{http.MethodGet, "/api/v1/dashboards/ops", "r-secret", "", 404, "not_found"},
		{http.MethodDelete, "/api/v1/dashboards/ops", "w-secret", "", 404, "not_found"},
	} {
		code, _, body := s.call(c.method, c.path, c.token, []byte(c.body))
		if code != c.code || !strings.Contains(body, c.has) {
			t.Errorf("%s %s: %d %s, want %d and %q", c.method, c.path, code, body, c.code, c.has)
		}
	}
	// The store is a directory of the data dir, and survives a restart.
	if code, body := putDashboard(t, s, "kept", "w-secret", doc); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "dashboards", "kept.json")); err != nil {
		t.Error(err)
	}
	s.stop()
	s = startServer(t, s.dataDir, "--auth.read-token", "r-secret")
	if code, _, body := s.call(http.MethodGet, "/api/v1/dashboards/kept", "r-secret", nil); code != 200 || !strings.Contains(body, `"title":"Ops"`) {
		t.Errorf("after a restart: %d %s", code, body)
	}
}

// TestWebReadToken: with auth on, the dashboard asks for the read token,
// keeps it for the tab (or on the device when asked), sends it, and draws.
func TestWebReadToken(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, "", "--auth.read-token", "r-secret", "--auth.write-token", "w-secret")
	artifacts := artifactsDir(t)
	if code, _, body := s.call(http.MethodPost, "/write?precision=s", "w-secret", []byte(fmt.Sprintf("cpu,host=h1 usage=3 %d\n", time.Now().Unix()-30))); code != http.StatusNoContent {
		t.Fatalf("write: %d %s", code, body)
	}
	b.open(t, s.url+"/?range=1h&g0.expr=cpu_usage", `.token-form:not([hidden])`)
	if why := evalJS[string](t, b, `document.querySelector('.token-why').textContent`); !strings.Contains(why, "read token") {
		t.Errorf("the token form says %q", why)
	}
	if err := evalJS[string](t, b, `document.querySelector('[data-panel=p0] .error')?.textContent || ''`); !strings.Contains(err, "401") {
		t.Errorf("the panel shows %q, want the 401", err)
	}
	b.screenshot(t, artifacts, "token-asked.png")
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(`#token-input`), "wrong"), chromedp.Click(chromedp.CSS(`.token-form button[type=submit]`)))
	b.pollAcrossReload(t, `document.querySelector('.token-why')?.textContent.includes('refused')`)
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`#token-input`), "r-secret"), chromedp.Click(chromedp.CSS(`.token-form button[type=submit]`)))
	b.pollAcrossReload(t, `document.querySelector('[data-panel=p0][data-drawn="1"]')`)
	store := evalJS[[2]string](t, b, `[sessionStorage.getItem('strata.token'), localStorage.getItem('strata.token') || '']`)
	if store != [2]string{"r-secret", ""} {
		t.Errorf("token kept as %q (session, local), want the session only", store)
	}
	if hidden := evalJS[bool](t, b, `document.querySelector('.token-form').hidden`); !hidden {
		t.Error("the token form stays open after the token worked")
	}
	b.screenshot(t, artifacts, "token-ok.png")
	// The status page reads /metrics with it too.
	b.open(t, s.url+"/status", `[data-stat=head-series]`)
	b.poll(t, `(document.querySelector('[data-stat=ingest-total]')?.textContent || '') === '1'`)
	// Remembered on the device: a new tab's session has none, yet it draws.
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`#token-button`)), chromedp.SetValue(chromedp.CSS(`#token-input`), "r-secret"),
		chromedp.Click(chromedp.CSS(`#token-remember`)), chromedp.Click(chromedp.CSS(`.token-form button[type=submit]`)))
	b.pollAcrossReload(t, `localStorage.getItem('strata.token') === 'r-secret' && !sessionStorage.getItem('strata.token') && document.querySelector('[data-stat=head-series]')`)
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/?range=1h&g0.expr=cpu_usage"), chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn="1"]`)))

	// Saving a dashboard takes the write token: asked for, then used.
	if code, body := putDashboard(t, s, "ops", "w-secret", map[string]any{"title": "Ops", "panels": []map[string]string{{"expr": "cpu_usage"}}}); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	b.open(t, s.url+"/dashboards?id=ops", `section.panel[data-drawn="1"]`)
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`#dash-title`), "Ops, renamed"), chromedp.Click(chromedp.CSS(`#dash-save`)))
	b.poll(t, `!document.querySelector('.token-form').hidden && document.querySelector('.token-why').textContent.includes('write token')`)
	b.do(t, webWaitDefault, chromedp.SetValue(chromedp.CSS(`#write-token-input`), "w-secret"), chromedp.Click(chromedp.CSS(`.token-form button[type=submit]`)))
	// No reload: the unsaved change stays, and Save now works.
	b.poll(t, `sessionStorage.getItem('strata.write-token') === 'w-secret' && document.querySelector('.token-form').hidden`)
	if got := evalJS[string](t, b, `document.querySelector('#dash-title').value`); got != "Ops, renamed" {
		t.Errorf("after giving the write token the title reads %q: the unsaved change is lost", got)
	}
	b.do(t, webWaitDefault, chromedp.Click(chromedp.CSS(`#dash-save`)))
	b.poll(t, `document.querySelector('.dash-status').textContent.startsWith('Saved')`)
	if code, _, body := s.call(http.MethodGet, "/api/v1/dashboards/ops", "r-secret", nil); code != 200 || !strings.Contains(body, `"title":"Ops, renamed"`) {
		t.Errorf("after saving with the write token: %d %s", code, body)
	}
	b.screenshot(t, artifacts, "token-write.png")
}
