package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// AssetsPrefix is where the embedded files are served, followed by the
// build's content hash: /assets/<hash>/js/main.js. A change to any file
// changes the hash, so assets can be cached for good.
const AssetsPrefix = "/assets/"

// assetsPlaceholder is replaced in index.html by AssetsPrefix and the hash.
const assetsPlaceholder = "%ASSETS%"

// pages are the paths answered with index.html; main.js picks the page.
var pages = map[string]bool{"/": true, "/graph": true, "/explore": true, "/status": true, "/dashboards": true}

// ContentSecurityPolicy is sent with every response: nothing may be loaded
// from, or sent to, another origin, and no inline script or style runs.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// asset is one file held in memory, with its gzipped form when that is
// smaller.
type asset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// handler serves the dashboard. It is immutable after New and safe for
// concurrent use.
type handler struct {
	version string            // content hash of every embedded file
	index   *asset            // index.html with the assets path filled in
	assets  map[string]*asset // by path below static/, e.g. "js/main.js"
}

// Handler returns the dashboard's HTTP handler. It answers GET and HEAD:
// the pages (/, /graph, /explore, /status, /dashboards) with index.html, never cached;
// the files under /assets/<hash>/ with a year-long immutable cache; and
// 404 for anything else.
func Handler() http.Handler {
	h, err := newHandler(static)
	if err != nil {
		panic(err) // the embedded files are fixed at build time; tests cover this
	}
	return h
}

func newHandler(fsys fs.FS) (*handler, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	h := &handler{assets: map[string]*asset{}}
	sum := sha256.New()
	var indexHTML []byte
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(sum, "%s\x00%d\x00", p, len(b)) // WalkDir is in lexical order
		sum.Write(b)
		if p == "index.html" {
			indexHTML = b
			return nil
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // LICENSE, VERSION: kept in the tree, not served
		}
		h.assets[p] = newAsset(b, ct)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedded dashboard: %w", err)
	}
	if indexHTML == nil {
		return nil, fmt.Errorf("read embedded dashboard: no index.html")
	}
	h.version = hex.EncodeToString(sum.Sum(nil))[:16]
	h.index = newAsset(bytes.ReplaceAll(indexHTML, []byte(assetsPlaceholder), []byte(h.assetsPath())), contentTypes[".html"])
	return h, nil
}

func newAsset(b []byte, contentType string) *asset {
	a := &asset{body: b, contentType: contentType}
	s := sha256.Sum256(b)
	a.etag = `"` + hex.EncodeToString(s[:8]) + `"`
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	if zw.Close() == nil && buf.Len() < len(b)*9/10 {
		a.gz = buf.Bytes()
	}
	return a
}

// assetsPath is the URL path the current build's files are served under.
func (h *handler) assetsPath() string { return AssetsPrefix + h.version }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case pages[p]:
		hd.Set("Cache-Control", "no-cache")
		h.serve(w, r, h.index)
	case p == "/favicon.ico":
		hd.Set("Cache-Control", "public, max-age=86400")
		h.serve(w, r, h.assets["favicon.svg"])
	case strings.HasPrefix(p, AssetsPrefix):
		version, name, _ := strings.Cut(strings.TrimPrefix(p, AssetsPrefix), "/")
		a := h.assets[name]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		if version == h.version {
			hd.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			// A page from an older build asks for its files: answer with
			// today's, but let no cache keep them under the old name.
			hd.Set("Cache-Control", "no-cache")
		}
		h.serve(w, r, a)
	default:
		http.NotFound(w, r)
	}
}

// serve writes a, gzipped when the client accepts it, or 304 when the
// client's copy is current.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, a *asset) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	body, etag := a.body, a.etag
	if a.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			hd.Set("Content-Encoding", "gzip")
			body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		}
	}
	hd.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		hd.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
