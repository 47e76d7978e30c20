package ingest

import (
	"errors"
	"testing"

	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// TestDecodeRemoteWriteV2UTF8: remote write 2.0 carries UTF-8 names (and
// exemplar label names) as they are; legacy validation leaves such a
// series out as one that can never be stored.
func TestDecodeRemoteWriteV2UTF8(t *testing.T) {
	build := func() []byte {
		r := newV2Request()
		r.series([]string{"__name__", "http.server.request.duration", "service.name", "api"}, Metadata{Type: "counter", Help: "Requests."}, func(ts *writev2.TimeSeries) {
			ts.Samples = []writev2.Sample{{Value: 1, Timestamp: 1}}
			ts.Exemplars = []writev2.Exemplar{r.exemplar([]string{"trace.id", "abc"}, 1, 0.5)}
		})
		r.series([]string{"__name__", "ok"}, Metadata{}, func(ts *writev2.TimeSeries) {
			ts.Samples = []writev2.Sample{{Value: 2, Timestamp: 1}}
		})
		return r.body(t)
	}
	b, rej, err := DecodeRemoteWriteV2(build(), DefaultLimits())
	if err != nil || rej != nil {
		t.Fatalf("utf8: error %v, rejected %v", err, rej)
	}
	requireBatch(t, b, []Series{
		series(ls("__name__", "http.server.request.duration", "service.name", "api"), Sample{1, 1}),
		series(ls("__name__", "ok"), Sample{1, 2}),
	})
	if len(b.Exemplars) != 1 || b.Exemplars[0].Exemplars[0].Labels.Get("trace.id") != "abc" {
		t.Errorf("exemplars %v", b.Exemplars)
	}
	if len(b.Metadata) != 1 || b.Metadata[0].Family != "http.server.request.duration" {
		t.Errorf("metadata %v", b.Metadata)
	}

	b, rej, err = DecodeRemoteWriteV2(build(), legacyLimits)
	if err != nil || rej == nil || rej.Samples != 1 || !errors.Is(rej, ErrInvalidMetricName) {
		t.Fatalf("legacy: error %v, rejected %+v", err, rej)
	}
	requireBatch(t, b, []Series{series(ls("__name__", "ok"), Sample{1, 2})})
}
