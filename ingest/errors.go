package ingest

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error a decoder returns is an *Error wrapping one
// of these, so callers can branch with errors.Is. All of them mean the
// request was bad (HTTP 400); none means the server failed.
var (
	// ErrEmptyBody is returned for a body with no bytes (or, for the text
	// formats, only whitespace).
	ErrEmptyBody = errors.New("empty body")
	// ErrMalformed is returned when the body does not parse in its format:
	// bad snappy, bad protobuf, a line-protocol or exposition syntax error,
	// invalid JSON or a JSON value of the wrong type, mismatched lengths.
	ErrMalformed = errors.New("malformed input")
	// ErrUnsupported is returned for valid input that Strata does not
	// store, or for an unsupported content type or precision.
	ErrUnsupported = errors.New("unsupported input")
	// ErrInvalidHistogram is returned for a native histogram that fails
	// Prometheus' validation (an unknown schema, spans that do not match
	// the buckets, a count below the sum of the buckets, ...).
	ErrInvalidHistogram = errors.New("invalid native histogram")

	// ErrInvalidExemplar is returned for an exemplar whose labels
	// Prometheus would refuse: an invalid or repeated name, a value that
	// is not UTF-8, more than 128 runes of names and values together.
	ErrInvalidExemplar = errors.New("invalid exemplar")
	// ErrEmptySeries is returned (remote write 2.0) for a series that
	// carries no sample, histogram or exemplar, which the spec forbids.
	ErrEmptySeries = errors.New("empty series")

	// ErrInvalidMetricName is returned for a missing metric name, one that
	// is not valid UTF-8 or, under Limits.LegacyNames, one that does not
	// match ^[a-zA-Z_:][a-zA-Z0-9_:]*$.
	ErrInvalidMetricName = errors.New("invalid metric name")
	// ErrInvalidLabelName is returned for an empty label name, one that is
	// not valid UTF-8 or, under Limits.LegacyNames, one that does not match
	// ^[a-zA-Z_][a-zA-Z0-9_]*$.
	ErrInvalidLabelName = errors.New("invalid label name")
	// ErrInvalidLabelValue is returned for a label value that is not valid
	// UTF-8 (ValidateSeries also returns it for an empty value).
	ErrInvalidLabelValue = errors.New("invalid label value")
	// ErrReservedLabel is returned for a label name starting with "__"
	// other than __name__.
	ErrReservedLabel = errors.New("reserved label name")
	// ErrDuplicateLabel is returned when one series names a label twice.
	ErrDuplicateLabel = errors.New("duplicate label name")

	// ErrTooManySeries is returned when a request holds more distinct
	// series than Limits.MaxSeriesPerRequest.
	ErrTooManySeries = errors.New("too many series")
	// ErrTooManySamples is returned when a request holds more samples than
	// Limits.MaxSamplesPerRequest.
	ErrTooManySamples = errors.New("too many samples")
	// ErrTooManyLabels is returned when a series has more labels (the
	// metric name included) than Limits.MaxLabelsPerSeries.
	ErrTooManyLabels = errors.New("too many labels")
	// ErrLabelTooLong is returned when a label name is longer than
	// Limits.MaxLabelNameLength or a label value (the metric name included)
	// is longer than Limits.MaxLabelValueLength.
	ErrLabelTooLong = errors.New("label too long")
	// ErrOutOfBounds is returned by CheckTimeBounds for a sample outside
	// the window of timestamps the server accepts (too far in the future,
	// or older than it keeps), as Prometheus' "out of bounds".
	ErrOutOfBounds = errors.New("out of bounds")
)

// Error is the error every decoder returns. Its message names the line (for
// the line-oriented formats) and the offending series, label or limit; Err is
// the sentinel (or underlying cause) it wraps.
type Error struct {
	// Line is the 1-based line of the body the error is about, 0 when the
	// format has no lines (remote write) or the error concerns the whole
	// body.
	Line int
	// Msg describes the problem without the line prefix.
	Msg string
	// Err is what the error wraps, usually one of the package's sentinels.
	Err error
}

var _ error = (*Error)(nil)

// Error returns "line N: msg", or msg alone when Line is 0.
func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.Msg
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Unwrap returns the sentinel or cause e wraps.
func (e *Error) Unwrap() error { return e.Err }

// newError returns an *Error wrapping sentinel, with no line yet.
func newError(sentinel error, msg string) *Error {
	return &Error{Msg: msg, Err: sentinel}
}

// atLine sets the line of err if it is an *Error without one, and returns it.
func atLine(err error, line int) error {
	var e *Error
	if errors.As(err, &e) && e.Line == 0 {
		e.Line = line
	}
	return err
}
