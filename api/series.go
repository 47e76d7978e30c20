package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/prometheus/storage"
)

// seriesBufferBytes is how much of a /api/v1/series answer is held before
// the first bytes are sent: an answer that fits goes out whole, with a
// proper error status if the listing fails; a longer one is streamed.
const seriesBufferBytes = 1 << 20

// series answers /api/v1/series. It lists labels only (hints.Func
// "series": no chunk is read, nothing is charged per series to the select
// budget) and merges the sorted listings of the match[] sets as it writes
// them, so an answer of any length is sent in memory bounded by the
// head's references to the matching series and seriesBufferBytes. With a
// limit, storage stops after limit+1 series, and a cut answer carries
// Prometheus' warning.
func (a *API) series(c echo.Context) error {
	q, mint, maxt, limit, err := a.listingQuerier(c)
	if err != nil {
		return err
	}
	defer q.Close()
	// With a limit, one series more than asked is enough to know the
	// answer was cut (Prometheus' toHintLimit).
	set, err := a.mergedSelect(c, q, &storage.SelectHints{Start: mint, End: maxt, Func: "series", Limit: hintLimit(limit)})
	if err != nil {
		return err
	}
	w := &streamWriter{c: c}
	w.buf = append(make([]byte, 0, 4096), `{"status":"success","data":[`...)
	n := 0
	truncated := false
	for set.Next() {
		if limit > 0 && n == limit {
			truncated = true
			break
		}
		if n > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = appendLabels(w.buf, set.At().Labels())
		n++
		if len(w.buf) >= seriesBufferBytes {
			if err := w.flush(); err != nil {
				return err // the client is gone
			}
		}
	}
	if err := set.Err(); err != nil {
		if !w.started {
			return err
		}
		a.logger.Error("series: streamed answer failed after it started; cutting the connection", "err", err)
		// The client reads an unexpected EOF, not a clean end.
		panic(http.ErrAbortHandler)
	}
	w.buf = append(w.buf, ']')
	if truncated {
		w.buf = appendStrings(w.buf, "warnings", []string{errTruncated})
	}
	w.buf = append(w.buf, '}')
	return w.flush()
}

// streamWriter sends a 200 answer in pieces.
type streamWriter struct {
	c       echo.Context
	buf     []byte
	started bool
}

func (w *streamWriter) flush() error {
	r := w.c.Response()
	if !w.started {
		w.started = true
		r.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		r.WriteHeader(http.StatusOK)
	}
	_, err := r.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}
