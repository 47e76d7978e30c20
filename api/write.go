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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/buffer/wal"
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

// Remote write versions, from the proto parameter of the Content-Type.
const (
	protoRW1 = "prometheus.WriteRequest"
	protoRW2 = "io.prometheus.write.v2.Request"
)

// The remote write 2.0 response headers: what was written, true counts.
const (
	headerSamplesWritten    = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten  = "X-Prometheus-Remote-Write-Exemplars-Written"
)

// remoteWriteVersion negotiates the content as the remote write 2.0 spec
// says: Content-Type application/x-protobuf with proto=prometheus.WriteRequest,
// or no proto parameter, or no Content-Type at all, is 1.0;
// proto=io.prometheus.write.v2.Request is 2.0; anything else is refused
// with 415, and so is a Content-Encoding other than snappy (a body without
// one is read as snappy, as every 1.0 sender compresses it). It reports
// whether the request is 2.0.
func remoteWriteVersion(h http.Header) (v2 bool, err error) {
	unsupported := func(format string, args ...any) error {
		return &apiError{typ: errBadData, status: http.StatusUnsupportedMediaType, err: fmt.Errorf(format, args...)}
	}
	if enc := h.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "snappy") {
		return false, unsupported("Content-Encoding %q is not supported: remote write bodies are snappy-compressed", enc)
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return false, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, unsupported("invalid Content-Type %q: %v", ct, err)
	}
	if mt != "application/x-protobuf" {
		return false, unsupported("Content-Type %q is not supported: remote write is application/x-protobuf", mt)
	}
	switch proto, ok := params["proto"]; {
	case !ok || proto == protoRW1:
		return false, nil
	case proto == protoRW2:
		return true, nil
	default:
		return false, unsupported("remote write message %q is not supported: send %s (remote write 1.0) or %s (2.0)", proto, protoRW1, protoRW2)
	}
}

// ingestFormat is one write endpoint's decoder.
type ingestFormat struct {
	name   string
	decode func(a *API, c echo.Context, body []byte) (*ingest.Batch, error)
}

var (
	formatRemoteWrite = ingestFormat{"remote_write", func(a *API, c echo.Context, body []byte) (*ingest.Batch, error) {
		if err := a.checkSnappyLen(body); err != nil {
			return nil, err
		}
		if a.rwSeries != nil {
			return a.rwSeries.DecodeRemoteWrite(body)
		}
		known, _ := a.app.(ingest.Known)
		return ingest.DecodeRemoteWriteKnown(body, a.opts.IngestLimits, known)
	}}
	// formatRemoteWriteV2 names remote write 2.0 in metrics; its requests
	// go through remoteWriteV2.
	formatRemoteWriteV2 = ingestFormat{name: "remote_write_v2"}
	formatLineProtocol  = ingestFormat{"influx", func(a *API, c echo.Context, body []byte) (*ingest.Batch, error) {
		known, _ := a.app.(ingest.Known)
		return ingest.DecodeLineProtocolKnown(body, c.QueryParam("precision"), a.now(), a.opts.IngestLimits, known)
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

// remoteWrite serves /api/v1/write: remote write 1.0 or 2.0, as the
// request's Content-Type says.
func (a *API) remoteWrite(c echo.Context) error {
	v2, err := remoteWriteVersion(c.Request().Header)
	if err != nil {
		return a.rejected(formatRemoteWrite, err)
	}
	if v2 {
		return a.remoteWriteV2(c)
	}
	return a.write(c, formatRemoteWrite)
}

// checkSnappyLen refuses a snappy body whose decoded length is over the
// body limit before it is decoded.
func (a *API) checkSnappyLen(body []byte) error {
	if n, err := snappy.DecodedLen(body); err == nil && int64(n) > a.opts.MaxBodyBytes {
		return &http.MaxBytesError{Limit: a.opts.MaxBodyBytes}
	}
	return nil
}

// remoteWriteV2 serves a remote write 2.0 request. What can be written is
// written, and only once it is durable does the answer go out, with the
// true counts in the X-Prometheus-Remote-Write-*-Written headers (every
// answer has them, zeros included): 204 when everything was written; 400
// when a part can never be written (the rest is, and counted); the usual
// 4xx for a request refused whole, 429 or 5xx for what the sender should
// retry, with nothing written.
func (a *API) remoteWriteV2(c echo.Context) error {
	f := formatRemoteWriteV2
	setWritten(c, 0, 0, 0)
	buf, err := a.readBody(c)
	if err != nil {
		return a.rejected(f, err)
	}
	defer putBody(buf)
	if err := a.checkSnappyLen(buf.Bytes()); err != nil {
		return a.rejected(f, err)
	}
	x := a.expectAppend()
	defer func() { x.Done() }() // refused, or a panic: appendExpected ends it otherwise
	known, _ := a.app.(ingest.Known)
	batch, rej, err := ingest.DecodeRemoteWriteV2Known(buf.Bytes(), a.opts.IngestLimits, known)
	if err != nil {
		return a.rejected(f, err)
	}
	// Samples outside the accepted window can never be written: 2.0
	// leaves them out and writes the rest.
	if mint, maxt, what, ok := a.timeBounds(); ok {
		rej = ingest.DropOutOfBounds(batch, mint, maxt, what, rej)
	}
	// Counted first: the head may add start-time zero samples, which
	// the sender did not send.
	floats, histograms := batch.NumFloats(), batch.NumHistograms()
	exemplars, err := a.appendV2(&x, batch)
	if err != nil {
		return a.rejected(f, err)
	}
	setWritten(c, floats, histograms, exemplars)
	if rej != nil {
		a.droppedExemplars(f, rej.Exemplars)
		return a.rejected(f, &apiError{typ: errBadData, status: http.StatusBadRequest, err: rej})
	}
	return c.NoContent(http.StatusNoContent)
}

// appendV2 appends a 2.0 batch as write does, and returns how many of its
// exemplars were stored. It hands *x to the appender (see appendExpected).
func (a *API) appendV2(x *wal.Expected, batch *ingest.Batch) (exemplars int, err error) {
	touched := touchedBy(batch, a.frontend.FreshFrom())
	if err := a.frontend.InvalidateBatch(touched); err != nil { // before: see store
		return 0, notDurable(false, err)
	}
	if err := a.appendExpected(x, batch); err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	if err := a.frontend.InvalidateBatch(touched); err != nil {
		return 0, notDurable(true, err)
	}
	a.metrics.samplesIn.WithLabelValues(formatRemoteWriteV2.name).Add(float64(batch.NumSamples()))
	if ec, ok := a.app.(ExemplarCounter); ok {
		return ec.ExemplarsStored(batch), nil
	}
	return 0, nil
}

// ExemplarCounter is implemented by an Appender that stores exemplars: it
// says how many of an appended batch's exemplars it kept.
type ExemplarCounter interface {
	ExemplarsStored(b *ingest.Batch) int
}

// droppedExemplars counts n exemplars of a stored request left out as
// invalid (what Prometheus' write handler drops with a log line).
func (a *API) droppedExemplars(f ingestFormat, n int) {
	if n > 0 {
		a.metrics.exDropped.WithLabelValues(f.name, "invalid").Add(float64(n))
		a.logger.Debug("exemplars dropped", "format", f.name, "reason", "invalid", "count", n)
	}
}

func setWritten(c echo.Context, samples, histograms, exemplars int) {
	h := c.Response().Header()
	h.Set(headerSamplesWritten, strconv.Itoa(samples))
	h.Set(headerHistogramsWritten, strconv.Itoa(histograms))
	h.Set(headerExemplarsWritten, strconv.Itoa(exemplars))
}

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
	x := a.expectAppend()
	defer func() { x.Done() }() // refused, or a panic: appendExpected ends it otherwise
	batch, err := f.decode(a, c, buf.Bytes())
	if err != nil {
		return a.rejected(f, err)
	}
	if err := a.store(f, &x, batch); err != nil {
		return err
	}
	a.droppedExemplars(f, batch.DroppedExemplars)
	// The store keeps nothing of the batch (it copies the labels it
	// keeps), and nothing here uses it any more.
	batch.Release()
	return c.NoContent(http.StatusNoContent)
}

// expectAppend announces an append about to come (the request's body is
// read, its decoding starts), so that the group commit of the appends
// in flight may wait for it (wal.WAL.Expect); the zero Expected when the
// appender takes no announcements. The handler ends it with a deferred
// Done (a refused request, a panic) unless appendExpected has handed it
// to the appender, which ends it.
func (a *API) expectAppend() wal.Expected {
	if a.expecting == nil {
		return wal.Expected{}
	}
	return a.expecting.ExpectAppend()
}

// appendExpected appends batch, handing the announcement *x to the
// appender, which ends it; *x is zero afterwards.
func (a *API) appendExpected(x *wal.Expected, batch *ingest.Batch) error {
	e := *x
	*x = wal.Expected{}
	if a.expecting == nil {
		return a.app.Append(batch)
	}
	return a.expecting.AppendExpected(e, batch)
}

// store checks batch's timestamps and appends it; when it returns nil the
// batch is durable and visible and no cached answer predates it. It
// hands *x, the announcement of the append (expectAppend), to the
// appender, unless the batch is refused first.
func (a *API) store(f ingestFormat, x *wal.Expected, batch *ingest.Batch) error {
	if err := a.checkTimeBounds(batch); err != nil {
		return a.rejected(f, err)
	}
	// Invalidated before the samples become visible too: an instance
	// sharing the cache through Redis that has not received them yet
	// then refuses, from before any extent holding them can exist, the
	// shared extents they touch (its partner rule), so it never answers
	// with samples it does not have.
	touched := touchedBy(batch, a.frontend.FreshFrom())
	if err := a.frontend.InvalidateBatch(touched); err != nil {
		return a.rejected(f, notDurable(false, err))
	}
	if err := a.appendExpected(x, batch); err != nil {
		return a.rejected(f, fmt.Errorf("append: %w", err))
	}
	// The samples are visible now; before acknowledging them, make every
	// cached answer they could change a miss.
	if err := a.frontend.InvalidateBatch(touched); err != nil {
		return a.rejected(f, notDurable(true, err))
	}
	a.metrics.samplesIn.WithLabelValues(f.name).Add(float64(batch.NumSamples()))
	return nil
}

// notDurable is the error of a write whose cache invalidation could not be
// made durable (cache.ErrInvalidationNotDurable): answered 503, so that the
// sender retries. This instance has made the invalidation (its own answers
// are right); what is missing is the guarantee that the other instances
// sharing the cache learn of it if this process stops. Before the append
// nothing is stored; after it, the samples are stored and visible here,
// and the retry appends them again, which changes nothing (the same value
// at the same time) and bumps the tags again.
func notDurable(stored bool, err error) error {
	if stored {
		return fmt.Errorf("the samples are stored, but not acknowledged: %w; retry the write", err)
	}
	return fmt.Errorf("nothing stored: %w; retry the write", err)
}

// touchedBy returns the metric names and days of the samples of b older
// than from (ms), once each, in the order they first occur: what a
// cached answer may have read.
func touchedBy(b *ingest.Batch, from int64) []query.Touched {
	var (
		t     touchedSet
		names [touchedAhead]string
	)
	for base := 0; base < len(b.Series); base += touchedAhead {
		block := b.Series[base:min(base+touchedAhead, len(b.Series))]
		// The names of the series that need them first, in a loop of
		// their own: reading a series' labels mostly waits for memory,
		// and a processor overlaps those waits only within a short loop.
		for k := range block {
			names[k] = ""
			if s := &block[k]; touchesOld(s, from) {
				names[k] = s.Name // taken by the decoder while the labels were at hand
				if names[k] == "" {
					names[k] = s.Labels.Get(labels.MetricName)
				}
			}
		}
		for k := range block {
			s := &block[k]
			touch := func(ts int64) {
				if ts < from {
					t.add(query.Touched{Name: names[k], Day: query.DayOf(ts)})
				}
			}
			for _, x := range s.Samples {
				touch(x.T)
			}
			// A late histogram changes cached float answers computed
			// from it (histogram_count, histogram_quantile, ...).
			for _, x := range s.Histograms {
				touch(x.T)
			}
			// The head may write a zero sample at a start time (remote
			// write 2.0), maybe long before the sample.
			for _, st := range s.StartTimes {
				if st != 0 {
					touch(st)
				}
			}
			for _, st := range s.HistogramStartTimes {
				if st != 0 {
					touch(st)
				}
			}
		}
	}
	return t.out
}

// touchedAhead is how many series touchedBy reads the names of at once.
const touchedAhead = 32

// touchesOld reports whether s has a sample, histogram or start time
// before from.
func touchesOld(s *ingest.Series, from int64) bool {
	for _, x := range s.Samples {
		if x.T < from {
			return true
		}
	}
	for _, x := range s.Histograms {
		if x.T < from {
			return true
		}
	}
	for _, st := range s.StartTimes {
		if st != 0 && st < from {
			return true
		}
	}
	for _, st := range s.HistogramStartTimes {
		if st != 0 && st < from {
			return true
		}
	}
	return false
}

// touchedSet collects keys once each, in the order they are added.
type touchedSet struct {
	out  []query.Touched
	last query.Touched              // the latest key added
	seen map[query.Touched]struct{} // the keys of out, once out is longer than touchedScan
}

// touchedScan is the length of touchedSet.out up to which a key is
// looked for in out itself rather than in a map: a request's series
// mostly share a few names and days (backfilled node metrics: 10 names,
// 1 or 2 days), and comparing a few strings costs less than hashing one.
const touchedScan = 16

func (t *touchedSet) add(k query.Touched) {
	if len(t.out) > 0 && k.Day == t.last.Day && k.Name == t.last.Name {
		return
	}
	t.last = k
	if t.seen == nil {
		for _, o := range t.out {
			if k.Day == o.Day && k.Name == o.Name {
				return
			}
		}
		t.out = append(t.out, k)
		if len(t.out) > touchedScan {
			t.seen = make(map[query.Touched]struct{}, 2*len(t.out))
			for _, o := range t.out {
				t.seen[o] = struct{}{}
			}
		}
		return
	}
	if _, ok := t.seen[k]; ok {
		return
	}
	t.seen[k] = struct{}{}
	t.out = append(t.out, k)
}

func (a *API) rejected(f ingestFormat, err error) error {
	typ, _ := classify(err)
	a.metrics.rejected.WithLabelValues(f.name, string(typ)).Inc()
	return err
}

// checkTimeBounds refuses a batch with a sample outside the window of
// Options.MaxSampleAge and Options.MaxFutureSkew around the server's clock.
func (a *API) checkTimeBounds(b *ingest.Batch) error {
	mint, maxt, what, ok := a.timeBounds()
	if !ok {
		return nil
	}
	return ingest.CheckTimeBounds(b, mint, maxt, what)
}

// timeBounds returns the window of sample timestamps the server accepts
// (Options.MaxSampleAge and Options.MaxFutureSkew around its clock) and
// what it comes from, for messages; ok is false when there is none.
func (a *API) timeBounds() (mint, maxt int64, what string, ok bool) {
	if a.opts.MaxFutureSkew <= 0 && a.opts.MaxSampleAge <= 0 {
		return 0, 0, "", false
	}
	now := time.Now
	if a.opts.Now != nil {
		now = a.opts.Now
	}
	t := now()
	mint, maxt = int64(math.MinInt64), int64(math.MaxInt64)
	var limits []string
	if a.opts.MaxSampleAge > 0 {
		mint = t.Add(-a.opts.MaxSampleAge).UnixMilli()
		limits = append(limits, "limits.max_sample_age "+a.opts.MaxSampleAge.String())
	}
	if a.opts.MaxFutureSkew > 0 {
		maxt = t.Add(a.opts.MaxFutureSkew).UnixMilli()
		limits = append(limits, "limits.max_future_skew "+a.opts.MaxFutureSkew.String())
	}
	return mint, maxt, "the server accepts samples within " + strings.Join(limits, " and ") + " of its clock", true
}
