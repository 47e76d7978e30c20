package api

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
	"github.com/strata-tsdb/strata/segments"
)

// histReadData is one series that holds floats, then integer histograms
// (with a counter reset), then float histograms: 300 samples every 10 s.
func histReadData() []segments.Sample {
	var out []segments.Sample
	for i := range 300 {
		x := segments.Sample{T: readTestT0 + int64(i)*10_000}
		n := uint64(i % 150) // a counter reset at i = 150
		h := &histogram.Histogram{Schema: 3, Count: 2*n + 1, ZeroCount: 1, Sum: float64(n) / 4,
			PositiveSpans: []histogram.Span{{Offset: 5, Length: 2}}, PositiveBuckets: []int64{int64(n), 0}}
		switch {
		case i < 100:
			x.V = float64(i)
		case i < 200:
			x.H = h
		default:
			x.FH = h.ToFloat(nil)
		}
		out = append(out, x)
	}
	return out
}

// appendHistReadData appends histReadData to head as series "mixed" and
// returns it.
func appendHistReadData(t *testing.T, head *buffer.Head) []segments.Sample {
	t.Helper()
	s := ingest.Series{Labels: labels.FromStrings("__name__", "mixed")}
	data := histReadData()
	for _, x := range data {
		switch {
		case x.H != nil:
			s.Histograms = append(s.Histograms, ingest.HistogramSample{T: x.T, H: x.H.Copy()})
		case x.FH != nil:
			s.Histograms = append(s.Histograms, ingest.HistogramSample{T: x.T, FH: x.FH.Copy()})
		default:
			s.Samples = append(s.Samples, ingest.Sample{T: x.T, V: x.V})
		}
	}
	if err := head.Append(&ingest.Batch{Series: []ingest.Series{s}}); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRemoteReadHistogramBudget checks that query.max_samples counts a
// native histogram by its size in both response types, as the PromQL
// engine does: a read whose floats plus histogram sizes are exactly the
// limit is answered, one sample-equivalent less is refused, although the
// number of samples and histograms is far under it.
func TestRemoteReadHistogramBudget(t *testing.T) {
	var cost, n int
	for _, x := range histReadData() {
		n++
		switch {
		case x.FH != nil:
			cost += (x.FH.Size() + 8) / 16 // promql.HPoint.size
		case x.H != nil:
			cost += (x.H.ToFloat(nil).Size() + 8) / 16
		default:
			cost++
		}
	}
	if cost < 2*n {
		t.Fatalf("the data costs %d for %d samples: too cheap to tell size from count", cost, n)
	}
	for _, tc := range []struct {
		limit int
		code  int
	}{{cost, 200}, {cost - 1, 422}} {
		a, head := newTestAPI(t, slog.New(slog.DiscardHandler), query.Options{MaxSamples: tc.limit}, Options{})
		srv := httptest.NewServer(a.Handler())
		appendHistReadData(t, head)
		for _, typ := range []prompb.ReadRequest_ResponseType{prompb.ReadRequest_SAMPLES, prompb.ReadRequest_STREAMED_XOR_CHUNKS} {
			resp := postRead(t, srv.URL, encodeReadRequest(t, &prompb.ReadRequest{
				Queries:               []*prompb.Query{{StartTimestampMs: 0, EndTimestampMs: math.MaxInt64, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "mixed")}}},
				AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ},
			}))
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("limit %d (the data costs %d), %v: status %d, want %d: %.200s", tc.limit, cost, typ, resp.StatusCode, tc.code, body)
			}
			if tc.code == 422 && !strings.Contains(string(body), "a native histogram counts by its size") {
				t.Errorf("limit %d, %v: %s", tc.limit, typ, body)
			}
		}
		srv.Close()
	}
}

func TestRemoteReadHistograms(t *testing.T) {
	a, head := newTestAPI(t, slog.New(slog.DiscardHandler), query.Options{}, Options{})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	data := appendHistReadData(t, head)
	mint, maxt := readTestT0+50*10_000, readTestT0+280*10_000
	var want []segments.Sample
	for _, x := range data {
		if x.T >= mint && x.T <= maxt {
			want = append(want, x)
		}
	}
	check := func(mode string, got []segments.Sample) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d samples, want %d", mode, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			ok := g.T == w.T && g.Type() == w.Type()
			switch {
			case !ok:
			case w.H != nil:
				ok = g.H.Copy().Compact(0).Equals(w.H.Copy().Compact(0))
			case w.FH != nil:
				ok = g.FH.Copy().Compact(0).Equals(w.FH.Copy().Compact(0))
			default:
				ok = g.V == w.V
			}
			if !ok {
				t.Fatalf("%s: sample %d: got %+v, want %+v", mode, i, g, w)
			}
		}
	}
	req := func(typ prompb.ReadRequest_ResponseType) []byte {
		return encodeReadRequest(t, &prompb.ReadRequest{
			Queries:               []*prompb.Query{{StartTimestampMs: mint, EndTimestampMs: maxt, Matchers: []*prompb.LabelMatcher{matcher(prompb.LabelMatcher_EQ, "__name__", "mixed")}}},
			AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{typ},
		})
	}

	// SAMPLES: floats in samples, histograms in histograms.
	resp := postRead(t, srv.URL, req(prompb.ReadRequest_SAMPLES))
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %s %v", resp.StatusCode, body, err)
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatal(err)
	}
	var rr prompb.ReadResponse
	if err := rr.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	if len(rr.Results) != 1 || len(rr.Results[0].Timeseries) != 1 {
		t.Fatalf("%d results", len(rr.Results))
	}
	var got []segments.Sample
	ts := rr.Results[0].Timeseries[0]
	for _, x := range ts.Samples {
		got = append(got, segments.Sample{T: x.Timestamp, V: x.Value})
	}
	for _, h := range ts.Histograms {
		if h.IsFloatHistogram() {
			got = append(got, segments.Sample{T: h.Timestamp, FH: h.ToFloatHistogram()})
		} else {
			got = append(got, segments.Sample{T: h.Timestamp, H: h.ToIntHistogram()})
		}
	}
	check("samples", got)

	// STREAMED_XOR_CHUNKS: chunks of each encoding, decoded with chunkenc.
	resp = postRead(t, srv.URL, req(prompb.ReadRequest_STREAMED_XOR_CHUNKS))
	fr := frameReader{bufio.NewReader(resp.Body)}
	got = got[:0]
	types := map[prompb.Chunk_Encoding]int{}
	for {
		msg, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var cr prompb.ChunkedReadResponse
		if err := cr.Unmarshal(msg); err != nil {
			t.Fatal(err)
		}
		for _, c := range cr.ChunkedSeries[0].Chunks {
			types[c.Type]++
			enc := map[prompb.Chunk_Encoding]chunkenc.Encoding{prompb.Chunk_XOR: chunkenc.EncXOR, prompb.Chunk_HISTOGRAM: chunkenc.EncHistogram, prompb.Chunk_FLOAT_HISTOGRAM: chunkenc.EncFloatHistogram}[c.Type]
			chk, err := chunkenc.FromData(enc, c.Data)
			if err != nil {
				t.Fatal(err)
			}
			it := chk.Iterator(nil)
			first := len(got)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				got = append(got, segments.ReadSample(it, vt, nil, nil))
			}
			if it.Err() != nil || got[first].T != c.MinTimeMs || got[len(got)-1].T != c.MaxTimeMs {
				t.Fatalf("chunk [%d, %d]: %v", c.MinTimeMs, c.MaxTimeMs, it.Err())
			}
		}
	}
	check("streamed", got)
	if types[prompb.Chunk_XOR] == 0 || types[prompb.Chunk_HISTOGRAM] < 2 || types[prompb.Chunk_FLOAT_HISTOGRAM] == 0 {
		t.Errorf("chunk types %v: want XOR, histogram (cut at the reset) and float histogram", types)
	}
}
