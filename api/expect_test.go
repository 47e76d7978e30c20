package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/query"
	"github.com/strata-tsdb/strata/segments"
)

// newStoreAPI is the API over a store whose group commits wait for
// announced appends (ExpectingAppender) without a time limit: an
// announcement the API never ends holds every later commit back for
// good, so that a test whose later writes complete shows that each was
// ended.
func newStoreAPI(t *testing.T, opts Options) http.Handler {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	set, err := segments.OpenSet(logger, filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	sopts := buffer.DefaultStoreOptions()
	sopts.WAL.ExpectWait = time.Hour
	st, err := buffer.OpenStore(logger, dir, sopts, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			t.Error(err)
		}
		_ = set.Close()
	})
	q := query.NewQueryable(st.Head(), nil)
	eng, err := query.NewEngine(logger, nil, q, query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fe, err := query.NewFrontend(eng, nil, query.FrontendOptions{}, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := New(logger, reg, reg, st, fe, q, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a.expecting == nil {
		t.Fatal("the store is no ExpectingAppender")
	}
	return a.Handler()
}

// rwBody is a remote write 1.0 body of n series (names prefixed with
// name), one sample each at ts.
func rwBody(t *testing.T, name string, n int, ts int64) []byte {
	t.Helper()
	var req prompb.WriteRequest
	for i := range n {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "i", Value: fmt.Sprint(i)}},
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(i)}},
		})
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

func post(h http.Handler, path, ctype, enc string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestWriteEndsAnnouncements checks that every write the API announces to
// the store (decoding starts) ends its announcement, whether it is
// stored or refused at any step: after each refused request, concurrent
// good ones, whose commits would wait for a forgotten announcement for
// ever, complete.
func TestWriteEndsAnnouncements(t *testing.T) {
	opts := DefaultOptions()
	opts.MaxSampleAge = time.Hour
	opts.IngestLimits.MaxSeriesPerRequest = 10
	now := time.Now()
	opts.Now = func() time.Time { return now }
	h := newStoreAPI(t, opts)
	const rw1 = "application/x-protobuf;proto=prometheus.WriteRequest"
	const rw2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	good := func(i int) *httptest.ResponseRecorder {
		return post(h, "/api/v1/write", rw1, "snappy", rwBody(t, fmt.Sprintf("good%d", i), 5, now.UnixMilli()))
	}
	refused := []struct {
		name, path, ctype, enc string
		body                   []byte
		status                 int
	}{
		{"bad snappy", "/api/v1/write", rw1, "snappy", []byte("not snappy"), http.StatusBadRequest},
		{"bad protobuf", "/api/v1/write", rw1, "snappy", snappy.Encode(nil, []byte{0x0a, 0xff}), http.StatusBadRequest},
		{"too many series", "/api/v1/write", rw1, "snappy", rwBody(t, "many", 11, now.UnixMilli()), http.StatusBadRequest},
		{"too old", "/api/v1/write", rw1, "snappy", rwBody(t, "old", 1, now.Add(-2*time.Hour).UnixMilli()), http.StatusBadRequest},
		{"bad 2.0", "/api/v1/write", rw2, "snappy", snappy.Encode(nil, []byte{0x0a, 0xff}), http.StatusBadRequest},
		{"bad line protocol", "/api/v2/write", "", "", []byte("cpu,host=a usage=\n"), http.StatusBadRequest},
		{"bad OTLP", "/api/v1/otlp/v1/metrics", "application/x-protobuf", "", []byte{0x0a, 0xff}, http.StatusBadRequest},
	}
	for i, c := range refused {
		if rec := post(h, c.path, c.ctype, c.enc, c.body); rec.Code != c.status {
			t.Fatalf("%s: %d %s, want %d", c.name, rec.Code, rec.Body, c.status)
		}
		// Two at once: the commit of one may wait for the other's
		// announcement, and must not for the refused one's.
		var wg sync.WaitGroup
		for j := range 2 {
			wg.Go(func() {
				if rec := good(2*i + j); rec.Code != http.StatusNoContent {
					t.Errorf("after %s: %d %s", c.name, rec.Code, rec.Body)
				}
			})
		}
		wg.Wait()
	}
	if rec := post(h, "/api/v2/write", "", "", []byte("cpu,host=a usage=1 "+fmt.Sprint(now.UnixNano())+"\n")); rec.Code != http.StatusNoContent {
		t.Fatalf("line protocol: %d %s", rec.Code, rec.Body)
	}
	if rec := good(100); rec.Code != http.StatusNoContent {
		t.Fatalf("last write: %d %s", rec.Code, rec.Body)
	}
}
