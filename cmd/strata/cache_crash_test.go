package main

import (
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// httpDo sends a request to the process and returns the status, the
// X-Strata-Cache header and the body.
func httpDo(t *testing.T, method, u, body string) (int, string, string) {
	t.Helper()
	code, hdr, b := httpCall(t, method, u, "", []byte(body))
	return code, hdr.Get("X-Strata-Cache"), b
}

// TestCacheCrashNoStaleHit: a cache saved at a clean stop is loaded at the
// next start; that run acknowledges a late write and a delete, then is
// killed with SIGKILL (no save). The start after it must not serve the
// answers saved before the write and the delete.
func TestCacheCrashNoStaleHit(t *testing.T) {
	bin := strataBinary(t)
	dir := t.TempDir()
	args := []string{"--enable-admin-api"}
	t0 := crashBase.Truncate(time.Hour)
	write := func(p *process, lines string) {
		t.Helper()
		if code, _, body := httpDo(t, http.MethodPost, p.url+"/write?precision=s", lines); code != http.StatusNoContent {
			t.Fatalf("write: %d %s", code, body)
		}
	}
	q := url.Values{"query": {`sum by (host) (rs_v)`}, "start": {itoa64(t0.Unix())}, "end": {itoa64(t0.Add(time.Hour).Unix())}, "step": {"60"}}
	query := func(p *process, nocache bool) (string, string) {
		t.Helper()
		params := url.Values{}
		for k, v := range q {
			params[k] = v
		}
		if nocache {
			params.Set("nocache", "1")
		}
		code, status, body := httpDo(t, http.MethodGet, p.url+"/api/v1/query_range?"+params.Encode(), "")
		if code != http.StatusOK {
			t.Fatalf("query_range: %d %s", code, body)
		}
		return status, body
	}
	p := startProcess(t, bin, dir, args...)
	write(p, string(linesFor([]string{"a", "b"}, t0, 360, func(h, i int) float64 { return float64(h*1000 + i) })))
	query(p, false)
	if st, _ := query(p, false); st != "hit" {
		t.Fatalf("second query: %s, want hit", st)
	}
	// A clean stop saves the cache.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	p = startProcess(t, bin, dir, args...)
	if st, _ := query(p, false); st != "hit" {
		t.Fatalf("after a clean restart: %s, want hit (the saved cache is trusted)", st)
	}
	// A late write to host a and a delete of host b, both acknowledged...
	write(p, "rs,host=a v=99999 "+itoa64(t0.Add(30*time.Minute+5*time.Second).Unix())+"\n")
	code, _, body := httpDo(t, http.MethodPost, p.url+"/api/v1/admin/tsdb/delete_series?"+url.Values{"match[]": {`rs_v{host="b"}`}}.Encode(), "")
	if code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	_, want := query(p, true)
	// ...then a crash.
	p.kill(t)

	p = startProcess(t, bin, dir, args...)
	st, got := query(p, false)
	if got != want {
		t.Fatalf("after a crash the cache answered (%s)\n%s\nwant\n%s", st, got, want)
	}
	if strings.Contains(got, `"host":"b"`) {
		t.Fatal("the deleted series came back")
	}
	if _, fresh := query(p, true); fresh != want {
		t.Fatalf("fresh answer after the crash differs from before it:\n%s\n%s", fresh, want)
	}
}
