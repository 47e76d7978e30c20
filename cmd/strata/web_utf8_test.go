package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// testWebUTF8: the editor completes a dotted metric name into the quoted
// syntax ({"http.server.request.duration"}), a dotted label name into
// "service.name"=", and its values; the query runs and the legend shows
// the series as Prometheus 3 prints it; Explore links graph it quoted.
func testWebUTF8(t *testing.T, b *browser, s *testServer, artifacts string, now time.Time) {
	body := fmt.Sprintf(`{"metric":{"__name__":"http.server.request.duration","service.name":"api"},"values":[1,2],"timestamps":[%d,%d]}`,
		now.Add(-time.Minute).UnixMilli(), now.UnixMilli())
	if code, resp := s.post("/api/v1/import", "application/json", []byte(body)); code != http.StatusNoContent {
		t.Fatalf("import: %d %s", code, resp)
	}
	editor := `[data-panel=p0] textarea`
	value := func() string {
		return evalJS[string](t, b, `document.querySelector('[data-panel=p0] textarea').value`)
	}
	items := `[...document.querySelectorAll('[data-panel=p0] .ac .ac-text')].map(e => e.textContent)`
	// One chart panel, whatever earlier subtests left in the saved view.
	b.do(t, webWaitDefault, chromedp.Navigate(s.url+"/?range=1h&g0.expr=vector(0)"), chromedp.WaitVisible(chromedp.CSS(editor)))

	evalJS[bool](t, b, `(() => { const e = document.querySelector('[data-panel=p0] textarea'); e.value = ''; e.focus(); return true; })()`)
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), "http.serv"))
	b.poll(t, items+`.includes('http.server.request.duration')`)
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), kb.Tab))
	if got := value(); got != `{"http.server.request.duration"}` {
		t.Fatalf("after accepting a dotted metric name the editor holds %q", got)
	}

	b.do(t, webWaitDefault,
		chromedp.SetValue(chromedp.CSS(editor), `{"http.server.request.duration", `),
		chromedp.Focus(chromedp.CSS(editor)),
		chromedp.SendKeys(chromedp.CSS(editor), `"serv`))
	b.poll(t, items+`.join() === 'service.name'`)
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), kb.Tab))
	b.poll(t, items+`.join() === 'api'`)
	if got := value(); got != `{"http.server.request.duration", "service.name"="` {
		t.Fatalf("after accepting a dotted label name the editor holds %q", got)
	}
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), kb.Tab))
	b.do(t, webWaitDefault, chromedp.SendKeys(chromedp.CSS(editor), "}"), pressEnter())
	want := `{"http.server.request.duration", "service.name"="api"}`
	if got := value(); got != want {
		t.Errorf("the editor holds %q, want %q", got, want)
	}
	// The legend shows the one series as Prometheus 3 prints it.
	b.poll(t, fmt.Sprintf(`[...document.querySelectorAll('[data-panel=p0] .legend-label')].map(e => e.textContent).join('|') === %q`, want))
	b.screenshot(t, artifacts, "utf8-names")

	b.open(t, s.url+"/explore?metric="+url.QueryEscape("http.server.request.duration"), `.detail-card a.button`)
	href := evalJS[string](t, b, `document.querySelector('.detail-card a.button').getAttribute('href')`)
	q, err := url.ParseQuery(strings.TrimPrefix(href, "/?"))
	if err != nil || q.Get("g0.expr") != `{"http.server.request.duration"}` {
		t.Errorf("Explore's graph link %q, want g0.expr={\"http.server.request.duration\"}", href)
	}
}
