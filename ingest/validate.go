package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
)

// ValidateSeries reports whether lset may be stored: it must hold a valid
// __name__, only valid, non-reserved, unique label names in sorted order,
// no empty or non-UTF-8 values, and respect lim. Decoders drop labels with
// an empty value before validating; callers with other sources should call
// lset.WithoutEmpty() first if they want the same semantics.
//
// The error is an *Error (Line 0) wrapping one of ErrInvalidMetricName,
// ErrInvalidLabelName, ErrInvalidLabelValue, ErrReservedLabel,
// ErrDuplicateLabel, ErrTooManyLabels or ErrLabelTooLong.
func ValidateSeries(lset labels.Labels, lim Limits) error {
	var (
		err     error
		prev    string
		n       int
		hasName bool
	)
	lset.Range(func(l labels.Label) {
		if err != nil {
			return
		}
		n++
		switch {
		case n > 1 && l.Name == prev:
			err = newError(ErrDuplicateLabel, fmt.Sprintf("duplicate label name %q", l.Name))
		case n > 1 && l.Name < prev:
			err = newError(ErrInvalidLabelName, fmt.Sprintf("label %q out of order after %q", l.Name, prev))
		case l.Name == labels.MetricName:
			hasName = true
			err = checkMetricName(l.Value, lim)
		case l.Value == "":
			err = newError(ErrInvalidLabelValue, fmt.Sprintf("empty value for label %q", l.Name))
		default:
			err = checkLabel(l.Name, l.Value, lim)
		}
		prev = l.Name
	})
	switch {
	case err != nil:
	case !hasName:
		err = newError(ErrInvalidMetricName, "missing metric name")
	case exceeds(n, lim.MaxLabelsPerSeries):
		err = newError(ErrTooManyLabels, fmt.Sprintf("too many labels: %d, limit is %d", n, lim.MaxLabelsPerSeries))
	}
	if err != nil {
		return withSeries(err, lset.String())
	}
	return nil
}

// checkMetricName validates the value of __name__.
func checkMetricName(name string, lim Limits) error {
	if name == "" {
		return newError(ErrInvalidMetricName, "missing metric name")
	}
	if !validMetricName(name, lim) {
		return newError(ErrInvalidMetricName, fmt.Sprintf("invalid metric name %q%s", truncate(name), nameRule(lim)))
	}
	if exceeds(len(name), lim.MaxLabelValueLength) {
		return newError(ErrLabelTooLong, fmt.Sprintf("metric name too long: %d bytes, limit is %d", len(name), lim.MaxLabelValueLength))
	}
	return nil
}

// checkLabel validates one label other than __name__.
func checkLabel(name, value string, lim Limits) error {
	switch {
	case !validLabelName(name, lim):
		return newError(ErrInvalidLabelName, fmt.Sprintf("invalid label name %q%s", truncate(name), nameRule(lim)))
	case strings.HasPrefix(name, "__"):
		return newError(ErrReservedLabel, fmt.Sprintf("reserved label name %q", truncate(name)))
	case exceeds(len(name), lim.MaxLabelNameLength):
		return newError(ErrLabelTooLong, fmt.Sprintf("label name %q too long: %d bytes, limit is %d", truncate(name), len(name), lim.MaxLabelNameLength))
	case exceeds(len(value), lim.MaxLabelValueLength):
		return newError(ErrLabelTooLong, fmt.Sprintf("value of label %q too long: %d bytes, limit is %d", truncate(name), len(value), lim.MaxLabelValueLength))
	case !utf8.ValidString(value):
		return newError(ErrInvalidLabelValue, fmt.Sprintf("value of label %q is not valid UTF-8", name))
	}
	return nil
}

// validMetricName reports whether s is a metric name under lim's
// validation scheme: legacy, or any non-empty valid UTF-8.
func validMetricName(s string, lim Limits) bool {
	if lim.LegacyNames {
		return isMetricName(s)
	}
	return s != "" && utf8.ValidString(s)
}

// validLabelName reports whether s is a label name under lim's validation
// scheme.
func validLabelName(s string, lim Limits) bool {
	if lim.LegacyNames {
		return isLabelName(s)
	}
	return s != "" && utf8.ValidString(s)
}

// nameRule says, for an error message, what a name must be.
func nameRule(lim Limits) string {
	if lim.LegacyNames {
		return " (ingest.name_validation: legacy)"
	}
	return ": names must be valid, non-empty UTF-8"
}

// isMetricName reports whether s matches ^[a-zA-Z_:][a-zA-Z0-9_:]*$.
func isMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ':' || c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// isLabelName reports whether s matches ^[a-zA-Z_][a-zA-Z0-9_]*$.
func isLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// maxQuoted bounds how much of a name or series an error message repeats.
const maxQuoted = 128

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}

// withSeries appends the offending series to err's message.
func withSeries(err error, series string) error {
	if e, ok := err.(*Error); ok {
		if len(series) > 2*maxQuoted {
			series = series[:2*maxQuoted] + "...}"
		}
		e.Msg += " in series " + series
	}
	return err
}

// formatSeries renders a metric name and other labels the way
// labels.Labels.String does, for error messages.
func formatSeries(name string, ls []labels.Label) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
		if b.Len() > 2*maxQuoted {
			break
		}
	}
	b.WriteByte('}')
	return b.String()
}
