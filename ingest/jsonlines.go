package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
)

// DecodeJSONLines decodes a body in the VictoriaMetrics /api/v1/import
// format: one JSON object per line,
//
//	{"metric":{"__name__":"up","job":"node"},"values":[1,0.5],"timestamps":[1700000000000,1700000010000]}
//
// Timestamps are integers in milliseconds. Values are JSON numbers or the
// strings "NaN", "Inf", "+Inf" and "-Inf"; null and other strings are
// refused. values and timestamps must have the same, non-zero length.
// Label values must be strings. Unknown keys in an object are ignored, a
// label named twice in "metric" is refused, and blank lines are skipped.
//
// Errors are *Error values naming the 1-based line at fault.
func DecodeJSONLines(body []byte, lim Limits) (*Batch, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, newError(ErrEmptyBody, "empty body")
	}
	b := getBuilder(lim)
	defer b.release()
	var obj jsonLine
	for lineNo, rest := 1, body; len(rest) > 0; lineNo++ {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := obj.decode(line, b); err != nil {
			return nil, atLine(err, lineNo)
		}
	}
	return b.batch(), nil
}

// jsonLine is one decoded line. It is reused from line to line, which lets
// encoding/json reuse its slices.
type jsonLine struct {
	Metric     jsonMetric  `json:"metric"`
	Values     []jsonValue `json:"values"`
	Timestamps []int64     `json:"timestamps"`
}

func (o *jsonLine) decode(line []byte, b *builder) error {
	o.Metric, o.Values, o.Timestamps = o.Metric[:0], o.Values[:0], o.Timestamps[:0]
	if err := json.Unmarshal(line, o); err != nil {
		return jsonError(err)
	}
	if len(o.Values) != len(o.Timestamps) {
		return newError(ErrMalformed, fmt.Sprintf("%d values but %d timestamps", len(o.Values), len(o.Timestamps)))
	}
	if len(o.Values) == 0 {
		return newError(ErrMalformed, "no samples: values and timestamps are empty")
	}
	b.resetLabels()
	for _, l := range o.Metric {
		b.addLabel(l.Name, l.Value)
	}
	b.finishLabels()
	ref, err := b.seriesRef()
	if err != nil {
		return err
	}
	for i, v := range o.Values {
		if err := b.add(ref, o.Timestamps[i], float64(v)); err != nil {
			return err
		}
	}
	return nil
}

// jsonError describes an encoding/json error without Go type names.
func jsonError(err error) error {
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
		e  *Error
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "line"
		}
		return &Error{Msg: fmt.Sprintf("invalid JSON: %s: got %s, want %s", field, te.Value, jsonTypeName(te)), Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	case errors.As(err, &se):
		return &Error{Msg: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err), Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	return &Error{Msg: fmt.Sprintf("invalid JSON: %v", err), Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
}

func jsonTypeName(te *json.UnmarshalTypeError) string {
	switch te.Type.String() {
	case "int64", "[]int64":
		return "integer timestamps in milliseconds"
	case "ingest.jsonLine":
		return "object"
	case "[]ingest.jsonValue":
		return "array"
	}
	return te.Type.String()
}

// jsonValue is a sample value: a JSON number or one of the strings "NaN",
// "Inf", "+Inf", "-Inf".
type jsonValue float64

// UnmarshalJSON implements json.Unmarshaler.
func (v *jsonValue) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*v = jsonValue(math.NaN())
		return nil
	case `"Inf"`, `"+Inf"`:
		*v = jsonValue(math.Inf(1))
		return nil
	case `"-Inf"`:
		*v = jsonValue(math.Inf(-1))
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return newError(ErrMalformed, fmt.Sprintf("invalid value %s: want a number, \"NaN\", \"Inf\", \"+Inf\" or \"-Inf\"", truncate(string(b))))
	}
	f, err := strconv.ParseFloat(yoloString(b), 64)
	if err != nil {
		return newError(ErrMalformed, fmt.Sprintf("invalid value %s: out of range", truncate(string(b))))
	}
	*v = jsonValue(f)
	return nil
}

// jsonMetric is the "metric" object, decoded in order so that duplicate
// keys are seen rather than silently collapsed as a map would.
type jsonMetric []labels.Label

// UnmarshalJSON implements json.Unmarshaler.
func (m *jsonMetric) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return newError(ErrMalformed, "invalid JSON: metric: want an object of label names to string values")
	}
	seen := map[string]struct{}{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		name := t.(string) // object keys are always strings
		t, err = dec.Token()
		if err != nil {
			return jsonError(err)
		}
		value, ok := t.(string)
		if !ok {
			return newError(ErrMalformed, fmt.Sprintf("invalid JSON: metric: value of label %q is not a string", truncate(name)))
		}
		if _, dup := seen[name]; dup {
			return newError(ErrDuplicateLabel, fmt.Sprintf("duplicate label name %q", truncate(name)))
		}
		seen[name] = struct{}{}
		*m = append(*m, labels.Label{Name: name, Value: value})
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return jsonError(err)
	}
	return nil
}
