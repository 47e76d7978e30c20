package api

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
)

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer putBody returns to bodyPool: one
// request near limits.max_body_bytes must not pin that much memory in the
// pool for the life of the process.
const maxPooledBody = 1 << 20

// putBody returns buf to bodyPool unless it grew past maxPooledBody, and
// reports whether it did.
func putBody(buf *bytes.Buffer) bool {
	if buf.Cap() > maxPooledBody {
		return false
	}
	bodyPool.Put(buf)
	return true
}

// readBody reads the request body, refusing more than the configured limit
// (after gzip decompression when the body is gzipped). The returned buffer
// goes back with putBody once nothing refers to its bytes.
func (a *API) readBody(c echo.Context) (*bytes.Buffer, error) {
	r := c.Request()
	var body io.Reader = http.MaxBytesReader(c.Response(), r.Body, a.opts.MaxBodyBytes)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, badData("decode gzip body: %v", err)
		}
		defer zr.Close()
		// The decompressed size is bounded too: a small gzip bomb must not
		// fill the memory.
		body = &limitedReader{r: zr, n: a.opts.MaxBodyBytes}
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := buf.ReadFrom(body); err != nil {
		putBody(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badData("read body: %v", err)
	}
	return buf, nil
}

// limitedReader fails with *http.MaxBytesError past n bytes.
type limitedReader struct {
	r    io.Reader
	n    int64
	read int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.n {
		return n, &http.MaxBytesError{Limit: l.n}
	}
	return n, err
}

// checkRemoteWriteType refuses with 415 what the remote write spec says a
// receiver must refuse that way: a message it does not decode (remote write
// 2.0's io.prometheus.write.v2.Request is not decoded yet; answering 2xx to
// it would drop the data while the sender counts it as sent) and an
// encoding other than snappy (gzip is read as well, as on every write
// route). A 1.0 request may leave the proto parameter, or the whole
// Content-Type, out.
func checkRemoteWriteType(h http.Header) error {
	unsupported := func(format string, args ...any) error {
		return &apiError{typ: errBadData, status: http.StatusUnsupportedMediaType, err: fmt.Errorf(format, args...)}
	}
	if enc := h.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") && !strings.EqualFold(enc, "gzip") {
		return unsupported("Content-Encoding %q is not supported: remote write bodies are snappy-compressed", enc)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return unsupported("invalid Content-Type %q: %v", ct, err)
	}
	if mt != "application/x-protobuf" {
		return unsupported("Content-Type %q is not supported: remote write is application/x-protobuf", mt)
	}
	if proto, ok := params["proto"]; ok && proto != "prometheus.WriteRequest" {
		return unsupported("remote write message %q is not supported: send prometheus.WriteRequest (remote write 1.0; in Prometheus, protobuf_message: prometheus.WriteRequest)", proto)
	}
	return nil
}

// ingestFormat is one write endpoint's decoder.
type ingestFormat struct {
	name   string
	decode func(a *API, c echo.Context, body []byte) (*ingest.Batch, error)
}

var (
	formatRemoteWrite = ingestFormat{"remote_write", func(a *API, c echo.Context, body []byte) (*ingest.Batch, error) {
		if err := checkRemoteWriteType(c.Request().Header); err != nil {
			return nil, err
		}
		if n, err := snappy.DecodedLen(body); err == nil && int64(n) > a.opts.MaxBodyBytes {
			return nil, &http.MaxBytesError{Limit: a.opts.MaxBodyBytes}
		}
		return ingest.DecodeRemoteWrite(body, a.opts.IngestLimits)
	}}
	formatLineProtocol = ingestFormat{"influx", func(a *API, c echo.Context, body []byte) (*ingest.Batch, error) {
		return ingest.DecodeLineProtocol(body, c.QueryParam("precision"), a.now(), a.opts.IngestLimits)
	}}
	formatJSON = ingestFormat{"json", func(a *API, _ echo.Context, body []byte) (*ingest.Batch, error) {
		return ingest.DecodeJSONLines(body, a.opts.IngestLimits)
	}}
	formatPromText = ingestFormat{"prometheus_text", func(a *API, c echo.Context, body []byte) (*ingest.Batch, error) {
		ts := a.now()
		if v := c.QueryParam("timestamp"); v != "" {
			t, err := parseTime(v)
			if err != nil {
				return nil, badData("invalid parameter \"timestamp\": %v", err)
			}
			ts = t
		}
		return ingest.DecodePromText(body, c.Request().Header.Get("Content-Type"), ts, a.opts.IngestLimits)
	}}
)

func (a *API) remoteWrite(c echo.Context) error      { return a.write(c, formatRemoteWrite) }
func (a *API) lineProtocol(c echo.Context) error     { return a.write(c, formatLineProtocol) }
func (a *API) importJSON(c echo.Context) error       { return a.write(c, formatJSON) }
func (a *API) importPrometheus(c echo.Context) error { return a.write(c, formatPromText) }

// write decodes a request in one format and appends it whole, or refuses it
// whole.
func (a *API) write(c echo.Context, f ingestFormat) error {
	buf, err := a.readBody(c)
	if err != nil {
		return a.rejected(f, err)
	}
	defer putBody(buf)
	batch, err := f.decode(a, c, buf.Bytes())
	if err != nil {
		return a.rejected(f, err)
	}
	if err := a.checkTimeBounds(batch); err != nil {
		return a.rejected(f, err)
	}
	if err := a.app.Append(batch); err != nil {
		return a.rejected(f, fmt.Errorf("append: %w", err))
	}
	// The samples are visible now; before acknowledging them, make every
	// cached answer they could change a miss.
	a.frontend.InvalidateBatch(touchedBy(batch, a.frontend.FreshFrom()))
	a.metrics.samplesIn.WithLabelValues(f.name).Add(float64(batch.NumSamples()))
	return c.NoContent(http.StatusNoContent)
}

// touchedBy returns the metric names and days of the samples of b older
// than from (ms), once each: what a cached answer may have read.
func touchedBy(b *ingest.Batch, from int64) []query.Touched {
	var (
		out  []query.Touched
		seen map[query.Touched]struct{}
	)
	for i := range b.Series {
		s := &b.Series[i]
		name, named := "", false
		touch := func(t int64) {
			if t >= from {
				return
			}
			if !named {
				name, named = s.Labels.Get(labels.MetricName), true
			}
			k := query.Touched{Name: name, Day: query.DayOf(t)}
			if _, ok := seen[k]; ok {
				return
			}
			if seen == nil {
				seen = map[query.Touched]struct{}{}
			}
			seen[k] = struct{}{}
			out = append(out, k)
		}
		for _, x := range s.Samples {
			touch(x.T)
		}
		// A late histogram changes cached float answers computed from it
		// (histogram_count, histogram_quantile, ...).
		for _, x := range s.Histograms {
			touch(x.T)
		}
	}
	return out
}

func (a *API) rejected(f ingestFormat, err error) error {
	typ, _ := classify(err)
	a.metrics.rejected.WithLabelValues(f.name, string(typ)).Inc()
	return err
}

// checkTimeBounds refuses a batch with a sample outside the window of
// Options.MaxSampleAge and Options.MaxFutureSkew around the server's clock.
func (a *API) checkTimeBounds(b *ingest.Batch) error {
	if a.opts.MaxFutureSkew <= 0 && a.opts.MaxSampleAge <= 0 {
		return nil
	}
	now := time.Now
	if a.opts.Now != nil {
		now = a.opts.Now
	}
	t := now()
	mint, maxt := int64(math.MinInt64), int64(math.MaxInt64)
	var what []string
	if a.opts.MaxSampleAge > 0 {
		mint = t.Add(-a.opts.MaxSampleAge).UnixMilli()
		what = append(what, "limits.max_sample_age "+a.opts.MaxSampleAge.String())
	}
	if a.opts.MaxFutureSkew > 0 {
		maxt = t.Add(a.opts.MaxFutureSkew).UnixMilli()
		what = append(what, "limits.max_future_skew "+a.opts.MaxFutureSkew.String())
	}
	return ingest.CheckTimeBounds(b, mint, maxt, "the server accepts samples within "+strings.Join(what, " and ")+" of its clock")
}
