package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, target string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assetURLs are the /assets/ references in index.html.
var assetURLs = regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`)

func TestPages(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/", "/graph", "/explore", "/status", "/dashboards"} {
		res := get(t, h, p+"?g0.expr=up")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", p, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, got)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", p, got)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", p, csp, want)
			}
		}
		b := body(t, res)
		if strings.Contains(b, assetsPlaceholder) {
			t.Errorf("%s: index.html still holds %s", p, assetsPlaceholder)
		}
		if strings.Contains(b, "http://") || strings.Contains(b, "https://") {
			t.Errorf("%s: index.html refers to another origin", p)
		}
	}
}

func TestAssetsReferencedByIndexAreServedImmutable(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, "/"))
	refs := assetURLs.FindAllStringSubmatch(index, -1)
	if len(refs) < 4 {
		t.Fatalf("index.html references %d assets, want the css, uPlot and main.js", len(refs))
	}
	for _, m := range refs {
		res := get(t, h, m[1])
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", m[1], res.StatusCode)
			continue
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", m[1], got)
		}
		want := contentTypes[path.Ext(m[1])]
		if got := res.Header.Get("Content-Type"); got != want {
			t.Errorf("%s: Content-Type %q, want %q", m[1], got, want)
		}
	}
}

func TestAssetFromAnotherBuildIsNotCachedForGood(t *testing.T) {
	res := get(t, Handler(), "/assets/0123456789abcdef/js/main.js")
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("status %d, Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
}

func TestNotFound(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/assets/x/js/nope.js", "/assets/x/vendor/uplot/LICENSE", "/index.html", "/assets/"} {
		if res := get(t, h, p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d", rec.Code)
	}
}

func TestGzipAndETag(t *testing.T) {
	h := newTestHandler(t)
	p := h.assetsPath() + "/vendor/uplot/uPlot.esm.js"
	res := get(t, h, p, "Accept-Encoding", "br, gzip")
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, h.assets["vendor/uplot/uPlot.esm.js"].body) {
		t.Fatal("gzipped body differs from the file")
	}
	if res := get(t, h, p, "Accept-Encoding", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent though refused")
	}
	etag := res.Header.Get("ETag")
	if res := get(t, h, p, "Accept-Encoding", "gzip", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}
	if res := get(t, h, p, "If-None-Match", etag); res.StatusCode != http.StatusOK {
		t.Errorf("identity request matched the gzip ETag: status %d", res.StatusCode)
	}
}

// Every relative import in the JavaScript modules must name an embedded
// file: there is no bundler to catch a typo.
func TestModuleImportsResolve(t *testing.T) {
	h := newTestHandler(t)
	imports := regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]+\s+from\s+)?['"]([^'"]+)['"]`)
	n := 0
	for name, a := range h.assets {
		if path.Ext(name) != ".js" || strings.HasPrefix(name, "vendor/") {
			continue
		}
		for _, m := range imports.FindAllStringSubmatch(string(a.body), -1) {
			if !strings.HasPrefix(m[1], ".") {
				t.Errorf("%s imports %q: only relative imports of embedded files work", name, m[1])
				continue
			}
			target := path.Join(path.Dir(name), m[1])
			if h.assets[target] == nil {
				t.Errorf("%s imports %q: no embedded %s", name, m[1], target)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("found no imports")
	}
}

// Nothing the dashboard ships may load from another origin.
func TestNoRemoteReferences(t *testing.T) {
	remote := regexp.MustCompile(`(?:src|href)\s*=\s*["']https?://|url\(\s*["']?https?://|@import\s+["']?https?://|fetch\(\s*["']https?://|from\s+["']https?://`)
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		if loc := remote.FindIndex(b); loc != nil {
			t.Errorf("%s refers to another origin: %q", p, b[loc[0]:min(loc[1]+40, len(b))])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newTestHandler(t *testing.T) *handler {
	t.Helper()
	h, err := newHandler(static)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
