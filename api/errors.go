package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/prometheus/promql"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/buffer/wal"
	"github.com/strata-tsdb/strata/cache"
	"github.com/strata-tsdb/strata/ingest"
	"github.com/strata-tsdb/strata/query"
	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote"
)

// errorType is the Prometheus API's errorType field.
type errorType string

const (
	errBadData     errorType = "bad_data"
	errExecution   errorType = "execution"
	errTimeout     errorType = "timeout"
	errCanceled    errorType = "canceled"
	errInternal    errorType = "internal"
	errNotFound    errorType = "not_found"
	errUnavailable errorType = "unavailable"
	errTooLarge    errorType = "too_large"
)

// apiError is an error with the type and status it is answered with.
type apiError struct {
	typ    errorType
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badData(format string, args ...any) error {
	return &apiError{typ: errBadData, status: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

// statusClientClosedRequest is nginx's and Prometheus' status for a request
// the client gave up on.
const statusClientClosedRequest = 499

// classify maps an error to what the client is told. It is the one place
// where errors become HTTP statuses.
func classify(err error) (errorType, int) {
	var (
		ae        *apiError
		he        *echo.HTTPError
		mbe       *http.MaxBytesError
		ingestErr *ingest.Error
		timeout   promql.ErrQueryTimeout
		canceled  promql.ErrQueryCanceled
		samples   promql.ErrTooManySamples
		storErr   promql.ErrStorage
	)
	switch {
	case errors.As(err, &ae):
		return ae.typ, ae.status
	case errors.As(err, &mbe):
		return errTooLarge, http.StatusRequestEntityTooLarge
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return errNotFound, he.Code
		case http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
			return errBadData, he.Code
		}
		if he.Code >= 500 {
			return errInternal, he.Code
		}
		return errBadData, he.Code
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return errTimeout, http.StatusServiceUnavailable
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return errCanceled, statusClientClosedRequest
	case errors.As(err, new(*segments.CorruptionError)):
		// Damaged data on the server's side, not a bad query: the segment
		// is quarantined and the message names it.
		return errInternal, http.StatusInternalServerError
	case errors.As(err, &samples):
		return errExecution, http.StatusUnprocessableEntity
	case errors.Is(err, remote.ErrUnavailable):
		// Data only in object storage, which cannot be reached: retryable;
		// the message names the bucket.
		return errUnavailable, http.StatusServiceUnavailable
	case errors.As(err, &storErr):
		return errInternal, http.StatusInternalServerError
	case errors.Is(err, query.ErrBadQuery), errors.As(err, &ingestErr), isIngestSentinel(err):
		return errBadData, http.StatusBadRequest
	case errors.Is(err, cache.ErrInvalidationNotDurable):
		// A write, delete or invalidation made here whose cache
		// invalidation may not reach the other instances: retryable,
		// and the retry is harmless.
		return errUnavailable, http.StatusServiceUnavailable
	case errors.Is(err, wal.ErrUnwritable), errors.Is(err, syscall.ENOSPC):
		// Nothing was stored; a full disk passes. 503 is retried by every
		// sender (Prometheus drops a batch on any 4xx but 429).
		return errUnavailable, http.StatusServiceUnavailable
	case errors.Is(err, buffer.ErrTooManySeries):
		return errUnavailable, http.StatusTooManyRequests
	}
	return errExecution, http.StatusUnprocessableEntity
}

func isIngestSentinel(err error) bool {
	for _, s := range []error{ingest.ErrEmptyBody, ingest.ErrTooManySeries, ingest.ErrTooManySamples, ingest.ErrTooManyLabels, ingest.ErrLabelTooLong, ingest.ErrOutOfBounds} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// errorMessage is what the client reads: echo's errors carry their message
// in a field, everything else in Error().
func errorMessage(err error) string {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Internal != nil {
			return fmt.Sprint(he.Message) + ": " + he.Internal.Error()
		}
		return fmt.Sprint(he.Message)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Sprintf("request body too large: the limit is %d bytes", mbe.Limit)
	}
	return err.Error()
}

// handleError is the Echo HTTPErrorHandler: every error leaves as a
// Prometheus-style JSON body with its status.
func (a *API) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	typ, status := classify(err)
	msg := errorMessage(err)
	switch {
	case typ == errUnavailable:
		// Overload and an unwritable WAL are retryable, and the gates and
		// the WAL report them through metrics and their own log lines: a
		// log line per refused request would flood the log.
		a.logger.Debug("request refused, retryable", "path", c.Path(), "status", status, "err", msg)
	case status >= 500 && typ != errTimeout:
		a.logger.Error("request failed", "path", c.Path(), "status", status, "err", msg)
	}
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && c.Response().Header().Get("Retry-After") == "" {
		c.Response().Header().Set("Retry-After", "1")
	}
	buf := appendErrorBody(nil, typ, msg)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.Blob(status, echo.MIMEApplicationJSON, buf)
}
