package target

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestTarget(t *testing.T, h http.Handler, f Flavour, dataDir string) *Target {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tg, err := New(Options{URL: srv.URL, Flavour: f, DataDir: dataDir, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Close)
	return tg
}

func TestNewRefusesRemoteTargets(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8430":   true,
		"http://localhost:9090/":  true,
		"http://[::1]:8430":       true,
		"http://127.0.0.2:1":      true,
		"http://10.0.0.1:8430":    false,
		"http://example.com:8430": false,
		"ftp://127.0.0.1:8430":    false,
		"127.0.0.1:8430":          false,
	} {
		_, err := New(Options{URL: url, Flavour: Strata})
		if (err == nil) != ok {
			t.Errorf("%s: err %v", url, err)
		}
	}
	if _, err := New(Options{URL: "http://10.0.0.1:8430", Flavour: Strata, AllowRemote: true}); err != nil {
		t.Errorf("allow remote: %v", err)
	}
	if _, err := New(Options{URL: "http://127.0.0.1:1", Flavour: "influx"}); err == nil {
		t.Error("unknown flavour accepted")
	}
}

func TestWriteOutcomes(t *testing.T) {
	tg := newTestTarget(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") != "snappy" || r.URL.Path != "/api/v1/write" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("fail") != "" {
			http.Error(w, "out of bounds", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), Prometheus, "")
	ctx := context.Background()
	h := map[string]string{"Content-Encoding": "snappy"}
	if o := tg.Write(ctx, "/api/v1/write", h, []byte("x")); !o.OK() || o.Cause() != "" || o.Latency <= 0 {
		t.Fatalf("outcome %+v", o)
	}
	if o := tg.Write(ctx, "/api/v1/write?fail=1", h, []byte("x")); o.OK() || o.Cause() != "400" || o.Message() != "out of bounds" {
		t.Fatalf("outcome %+v", o)
	}
	dead, _ := New(Options{URL: "http://127.0.0.1:1", Flavour: Generic})
	if o := dead.Write(ctx, "/", nil, nil); o.Cause() != "transport" || o.Message() == "" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestQueryRange(t *testing.T) {
	var got *http.Request
	tg := newTestTarget(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set(CacheHeader, "hit")
		if r.URL.Query().Get("query") == "bad" {
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
			return
		}
		w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[` +
			`{"metric":{"host":"a"},"values":[[1,"1"],[2,"2"]]},{"metric":{},"values":[[1,"NaN"]]}]}}`))
	}), Strata, "")
	q := RangeQuery{Expr: `rate(x{host="a"}[1m])`, Start: time.Unix(1000, 0), End: time.Unix(4600, 500e6), Step: 15 * time.Second}
	o := tg.QueryRange(context.Background(), q, true)
	if !o.OK() || o.Series != 2 || o.Points != 3 || o.Cache != "hit" {
		t.Fatalf("outcome %+v", o)
	}
	v := got.URL.Query()
	if v.Get("query") != q.Expr || v.Get("start") != "1000" || v.Get("end") != "4600.5" || v.Get("step") != "15" || v.Get("nocache") != "1" || got.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("request %s %v", got.URL, got.Header)
	}
	o = tg.QueryRange(context.Background(), q, false)
	if got.URL.Query().Has("nocache") || got.Header.Get("Cache-Control") != "" {
		t.Fatalf("cache bypass asked for: %s", got.URL)
	}
	q.Expr = "bad"
	if o = tg.QueryRange(context.Background(), q, false); o.OK() || o.Cause() != "bad-answer" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics([]byte(`# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345e+08
prometheus_tsdb_head_samples_appended_total{type="float"} 100
prometheus_tsdb_head_samples_appended_total{type="histogram"} 5
weird{a="x } y",b="q\"}"} 7 1700000000000
broken{a="x"
`))
	if *m.int("process_resident_memory_bytes") != 123450000 || *m.int("prometheus_tsdb_head_samples_appended_total") != 105 || *m.int("weird") != 7 {
		t.Fatalf("parsed %v", m)
	}
	if m.int("missing") != nil || m.int("broken") != nil {
		t.Fatal("invented a metric")
	}
}

func TestSnapshotStrata(t *testing.T) {
	tg := newTestTarget(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			w.Write([]byte("process_resident_memory_bytes 1000\nstrata_head_series 20\nstrata_head_samples 300\nstrata_head_samples_appended_total 400\n"))
		case "/api/v1/status/tsdb":
			w.Write([]byte(`{"status":"success","data":{"headStats":{"numSeries":20,"numSamples":300},"walBytes":50,"segmentBytes":90,"segmentSamples":100,"bytesPerSample":0.9,"segments":[{"id":"a"},{"id":"b"}]}}`))
		}
	}), Strata, "")
	s, err := tg.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if *s.RSSBytes != 1000 || *s.HeadSeries != 20 || *s.HeadSamples != 300 || *s.SamplesAppended != 400 || *s.WALBytes != 50 || *s.BlockBytes != 90 || *s.BlockSamples != 100 || *s.Blocks != 2 {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestSnapshotPrometheusDataDir(t *testing.T) {
	dir := t.TempDir()
	write := func(path string, size int) {
		t.Helper()
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := []byte(strings.Repeat("x", size))
		if strings.HasSuffix(path, "meta.json") {
			data = []byte(`{"stats":{"numSamples":1000}}`)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("wal/00000000", 300)
	write("chunks_head/000001", 200)
	write("01BLOCKA/meta.json", 0)
	write("01BLOCKA/chunks/000001", 700)
	write("01BLOCKB/meta.json", 0)
	write("01BLOCKB/index", 100)
	write("01BLOCKC.tmp-for-creation/index", 50) // no meta.json yet
	write("lock", 0)
	tg := newTestTarget(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("process_resident_memory_bytes 5\nprometheus_tsdb_head_series 7\n"))
	}), Prometheus, dir)
	s, err := tg.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	meta := int64(len(`{"stats":{"numSamples":1000}}`))
	if *s.HeadSeries != 7 || *s.Blocks != 2 || *s.BlockSamples != 2000 || *s.BlockBytes != 800+2*meta || *s.WALBytes != 500 || *s.DiskBytes != 1350+2*meta {
		t.Fatalf("snapshot blocks %d samples %d bytes %d wal %d disk %d", *s.Blocks, *s.BlockSamples, *s.BlockBytes, *s.WALBytes, *s.DiskBytes)
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte("process_resident_memory_bytes 1.5e+08\n"))
	f.Add([]byte(`a{b="c}\"",d="e"} 1 2` + "\n# HELP x y\n"))
	f.Add([]byte("{\n}}} 1\nname{ 3"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for name := range parseMetrics(body) {
			if name == "" || strings.ContainsAny(name, "{ ") {
				t.Fatalf("bad metric name %q", name)
			}
		}
	})
}
