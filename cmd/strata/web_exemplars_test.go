package main

import (
	"math"
	"strings"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/prompb"

	"github.com/chromedp/chromedp"
)

// TestWebMetadataAndExemplars drives Chromium against a server fed by
// Prometheus' remote-write client: the editor's autocomplete shows a
// metric's type, unit and help from /api/v1/metadata, and the chart marks
// the exemplars /api/v1/query_exemplars serves, at their time and value,
// with their labels in the mark's title.
func TestWebMetadataAndExemplars(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, "")
	now := time.Now().Truncate(time.Minute)
	lbls := []prompb.Label{{Name: "__name__", Value: "webex_requests_total"}, {Name: "job", Value: "api"}}
	var samples []prompb.Sample
	for k := 15; k >= 1; k-- {
		samples = append(samples, prompb.Sample{Timestamp: now.Add(-time.Duration(k) * time.Minute).UnixMilli(), Value: float64(100 - k)})
	}
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{Labels: lbls, Samples: samples, Exemplars: []prompb.Exemplar{
			{Labels: []prompb.Label{{Name: "trace_id", Value: "trace-ten"}}, Value: 90, Timestamp: now.Add(-10 * time.Minute).UnixMilli()},
			{Labels: []prompb.Label{{Name: "trace_id", Value: "trace-five"}}, Value: 95, Timestamp: now.Add(-5 * time.Minute).UnixMilli()},
		}}},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "webex_requests_total", Help: "Requests served by the API.", Unit: "requests"}},
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store(t, rwClient(t, s.url, remoteapi.WriteV1MessageType), raw); err != nil {
		t.Fatal(err)
	}
	artifacts := artifactsDir(t)

	editor := `[data-panel=p0] textarea`
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/?range=1h"), chromedp.WaitVisible(chromedp.CSS(editor)))
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), "webex_req"))
	item := `[...document.querySelectorAll('[data-panel=p0] .ac li')].find(li => li.querySelector('.ac-text').textContent === 'webex_requests_total')`
	b.poll(t, item+` !== undefined`)
	if got := evalJS[string](t, b, item+`.querySelector('.ac-kind').textContent`); got != "counter · requests" {
		t.Errorf("autocomplete kind %q, want the type and unit %q", got, "counter · requests")
	}
	if got := evalJS[string](t, b, item+`.querySelector('.ac-help')?.textContent ?? ''`); got != "Requests served by the API." {
		t.Errorf("autocomplete help %q, want the metric's help", got)
	}
	b.screenshot(t, artifacts, "metadata-autocomplete")

	b.do(t, webWaitDefault,
		chromedp.SetValue(chromedp.CSS(editor), `webex_requests_total`),
		chromedp.Focus(chromedp.CSS(editor)),
		pressEnter())
	b.do(t, webWaitDefault, chromedp.WaitReady(chromedp.CSS(`[data-panel=p0][data-drawn]`)))
	b.poll(t, `document.querySelectorAll('[data-panel=p0] .u-over .exemplar').length === 2`)
	type mark struct {
		Title       string
		Time, Value float64
		Left, Top   float64
		X, Y        float64 // where the chart puts that time and value
	}
	marks := evalJS[[]mark](t, b, `(() => {
		const u = document.querySelector('[data-panel=p0] .plot').uplot;
		return [...document.querySelectorAll('[data-panel=p0] .u-over .exemplar')].map(m => ({
			title: m.title, time: +m.dataset.time, value: +m.dataset.value,
			left: parseFloat(m.style.left), top: parseFloat(m.style.top),
			x: u.valToPos(+m.dataset.time, 'x'), y: u.valToPos(+m.dataset.value, 'y'),
		})).sort((a, b) => a.time - b.time);
	})()`)
	want := []struct {
		trace string
		at    time.Time
		v     float64
	}{{"trace-ten", now.Add(-10 * time.Minute), 90}, {"trace-five", now.Add(-5 * time.Minute), 95}}
	for i, w := range want {
		m := marks[i]
		if m.Time != float64(w.at.Unix()) || m.Value != w.v {
			t.Errorf("mark %d at %v value %v, want %v value %v", i, m.Time, m.Value, w.at.Unix(), w.v)
		}
		if !strings.Contains(m.Title, `trace_id="`+w.trace+`"`) || !strings.Contains(m.Title, "webex_requests_total") {
			t.Errorf("mark %d title %q, want its trace_id %s and series", i, m.Title, w.trace)
		}
		if math.Abs(m.Left-m.X) > 0.5 || math.Abs(m.Top-m.Y) > 0.5 || m.Left <= 0 || m.Top <= 0 {
			t.Errorf("mark %d at (%v, %v), the chart puts its time and value at (%v, %v)", i, m.Left, m.Top, m.X, m.Y)
		}
	}
	if marks[0].Top <= marks[1].Top {
		t.Errorf("the mark of value 90 (top %v) is not below the one of 95 (top %v)", marks[0].Top, marks[1].Top)
	}
	b.screenshot(t, artifacts, "exemplars")
	b.checkRequestsAndConsole(t, s.url)
}
