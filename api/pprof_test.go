package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprof: with the admin APIs on, /debug/pprof/ serves the index, the
// named profiles (a heap profile, in text) and the command line;
// with them off, every profile route is refused with 403.
func TestPprof(t *testing.T) {
	get := func(url string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	url := newAuthTestServer(t, Options{EnableAdmin: true})
	if code, b := get(url + "/debug/pprof/"); code != http.StatusOK || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("index: %d %.200s", code, b)
	}
	if code, b := get(url + "/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.HasPrefix(string(b), "heap profile:") {
		t.Fatalf("heap: %d %.200s", code, b)
	}
	if code, b := get(url + "/debug/pprof/cmdline"); code != http.StatusOK || len(b) == 0 {
		t.Fatalf("cmdline: %d %q", code, b)
	}

	url = newAuthTestServer(t, Options{})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if code, b := get(url + path); code != http.StatusForbidden || !strings.Contains(string(b), "--enable-admin-api") {
			t.Errorf("%s with admin APIs off: %d %.200s, want 403 naming --enable-admin-api", path, code, b)
		}
	}
}
