package api

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/labstack/echo/v4"

	"github.com/strata-tsdb/strata/query"
)

// Range query answers are encoded (and gzipped) here rather than by
// compressAnswers, so that the frontend can store the very bytes sent and
// answer the same query from them (query.RangeBody). A client that accepts
// gzip gets answers of at least gzipMin bytes gzipped at the fastest
// level; the two encodings are stored apart, each when a client asks for
// it.

// gzipMin is the smallest answer gzipped, as compressAnswers' MinLength.
const gzipMin = 1024

// rangeFormat names the encoding of range answers in the keys of stored
// answers: change it whenever appendSuccess, appendQueryData or the
// gzipping change what is sent.
const rangeFormat = "prom-json-1"

// rangeEncoder encodes a range result as the Prometheus API's JSON,
// gzipped from gzipMin bytes when gz is set; a result of more series than
// Options.MaxQuerySeries is refused before it is encoded.
func (a *API) rangeEncoder(gz bool) query.Encoder {
	format := rangeFormat
	if gz {
		format += ";gzip-min=1024"
	}
	return query.Encoder{Format: format, Encode: func(res *query.Result) (query.Body, error) {
		n := seriesCount(res.Value)
		if err := a.checkSeries(n); err != nil {
			return query.Body{}, err
		}
		// Encoded into a pooled buffer, given back by the handler's
		// Release once sent (or here, once gzipped).
		b := query.NewBody(func(dst []byte) []byte {
			return appendSuccess(dst, func(dst []byte) []byte { return appendQueryData(dst, res.Value) }, res.Warnings, res.Infos)
		})
		b.Series = n
		if gz && len(b.Bytes) >= gzipMin {
			zb := gzipBytes(b.Bytes)
			b.Release()
			b = query.Body{Bytes: zb, Gzip: true, Series: n}
		}
		return b, nil
	}}
}

// acceptsGzip reports whether the client accepts gzip, as echo's Gzip
// middleware judges it.
func acceptsGzip(c echo.Context) bool {
	return strings.Contains(c.Request().Header.Get(echo.HeaderAcceptEncoding), "gzip")
}

// sendBody answers a range query's encoded answer (or its error), counted
// as queryResult counts answers.
func (a *API) sendBody(c echo.Context, kind string, b query.Body, err error) error {
	if err == nil {
		// Checked again for an answer stored before the limit changed.
		err = a.checkSeries(b.Series)
	}
	if err != nil {
		typ, _ := classify(err)
		a.metrics.queries.WithLabelValues(kind, string(typ)).Inc()
		return err
	}
	a.metrics.queries.WithLabelValues(kind, "success").Inc()
	// The headers' values share one array, where Set allocated a slice
	// for each (a hit's five of its allocations). Each is a slice of
	// capacity 1 of it, so an Add elsewhere copies it rather than
	// writing over the next value; the names are canonical.
	vals := [...]string{string(b.Cache), b.Resolution.String(), echo.HeaderAcceptEncoding,
		"gzip", strconv.Itoa(len(b.Bytes)), echo.MIMEApplicationJSON}
	h := c.Response().Header()
	set := func(name string, i int) { h[name] = vals[i : i+1 : i+1] }
	set(cacheHeader, 0)
	set(resolutionHeader, 1)
	if _, ok := h[echo.HeaderVary]; ok {
		h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	} else {
		set(echo.HeaderVary, 2)
	}
	if b.Gzip {
		set(echo.HeaderContentEncoding, 3)
	}
	// Known, so the answer is sent as it is rather than in chunks.
	set(echo.HeaderContentLength, 4)
	if h.Get(echo.HeaderContentType) == "" { // as Blob sets it
		set(echo.HeaderContentType, 5)
	}
	return joinedWrites(c.Request().Context(), len(b.Bytes),
		func() error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b.Bytes) },
		func() error { return http.NewResponseController(c.Response()).Flush() })
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// gzipBytes returns b gzipped at the fastest level.
func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b)/4 + 64)
	w := gzipWriters.Get().(*gzip.Writer)
	w.Reset(&out)
	_, _ = w.Write(b) // a bytes.Buffer does not fail
	_ = w.Close()
	gzipWriters.Put(w)
	return out.Bytes()
}
