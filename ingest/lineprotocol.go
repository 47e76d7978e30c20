package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
)

// DecodeLineProtocol decodes an Influx line protocol body.
//
// precision is the unit of the timestamps in body: "ns" (or "n", or ""),
// "us" (or "u"), "ms" or "s"; anything else fails with ErrUnsupported.
// Timestamps are converted to milliseconds, rounding down; a line without a
// timestamp gets now.
//
// Tags become labels. Each numeric field (float, integer, unsigned) and each
// boolean field (true → 1, false → 0) becomes one sample of the series named
// <measurement>_<field>, following VictoriaMetrics; a field named "value" is
// no exception (cpu value=1 becomes cpu_value). String fields are skipped,
// so a line with only string fields adds nothing. Names are not sanitised:
// if <measurement>_<field> is not a valid metric name or a tag key is not a
// valid label name, the request fails. A tag named __name__ is refused as a
// duplicate of the metric name.
//
// Errors are *Error values naming the line (1-based) of the entry at fault.
func DecodeLineProtocol(body []byte, precision string, now time.Time, lim Limits) (*Batch, error) {
	toMs, err := precisionToMs(precision)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, newError(ErrEmptyBody, "empty body")
	}
	b := getBuilder(lim)
	defer b.release()
	p := lpParser{dec: lineprotocol.NewDecoderWithBytes(body), b: b, toMs: toMs, now: now.UnixMilli()}
	for entry := 1; p.dec.Next(); entry++ {
		if err := p.entry(); err != nil {
			return nil, lpError(err, body, entry)
		}
	}
	return b.batch(), nil
}

// precisionToMs returns the function converting a timestamp at precision
// into milliseconds, flooring and reporting overflow.
func precisionToMs(precision string) (func(int64) (int64, bool), error) {
	switch precision {
	case "", "ns", "n":
		return func(t int64) (int64, bool) { return floorDiv(t, 1e6), true }, nil
	case "us", "u":
		return func(t int64) (int64, bool) { return floorDiv(t, 1e3), true }, nil
	case "ms":
		return func(t int64) (int64, bool) { return t, true }, nil
	case "s":
		return func(t int64) (int64, bool) {
			if t > math.MaxInt64/1000 || t < math.MinInt64/1000 {
				return 0, false
			}
			return t * 1000, true
		}, nil
	}
	return nil, newError(ErrUnsupported, fmt.Sprintf("unknown precision %q: want ns, us, ms or s", precision))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// lpParser holds the per-request state for DecodeLineProtocol.
type lpParser struct {
	dec  *lineprotocol.Decoder
	b    *builder
	toMs func(int64) (int64, bool)
	now  int64

	// The decoder's slices are only valid until its next call, so one
	// entry's measurement, tags and field names are copied into buf and
	// referred to by offsets.
	buf    []byte
	tags   []span
	fields []lpField
}

type span struct{ start, end int }

type lpField struct {
	name span // <measurement>_<field>
	v    float64
}

func (p *lpParser) str(s span) string { return yoloString(p.buf[s.start:s.end]) }

// entry decodes the entry the decoder is positioned at.
func (p *lpParser) entry() error {
	p.buf, p.tags, p.fields = p.buf[:0], p.tags[:0], p.fields[:0]
	m, err := p.dec.Measurement()
	if err != nil {
		return err
	}
	p.buf = append(p.buf, m...)
	mlen := len(p.buf)
	for {
		k, v, err := p.dec.NextTag()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
		start := len(p.buf)
		p.buf = append(p.buf, k...)
		mid := len(p.buf)
		p.buf = append(p.buf, v...)
		p.tags = append(p.tags, span{start, mid}, span{mid, len(p.buf)})
	}
	for {
		k, v, err := p.dec.NextField()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
		var f float64
		switch v.Kind() {
		case lineprotocol.Float:
			f = v.FloatV()
		case lineprotocol.Int:
			f = float64(v.IntV())
		case lineprotocol.Uint:
			f = float64(v.UintV())
		case lineprotocol.Bool:
			if v.BoolV() {
				f = 1
			}
		default: // String
			continue
		}
		start := len(p.buf)
		p.buf = append(p.buf, p.buf[:mlen]...)
		p.buf = append(p.buf, '_')
		p.buf = append(p.buf, k...)
		p.fields = append(p.fields, lpField{name: span{start, len(p.buf)}, v: f})
	}
	tb, err := p.dec.TimeBytes()
	if err != nil {
		return err
	}
	ts := p.now
	if tb != nil {
		t, ok := parseInt(tb)
		if ok {
			ts, ok = p.toMs(t)
		}
		if !ok {
			return newError(ErrMalformed, fmt.Sprintf("invalid timestamp %q", tb))
		}
	}
	if len(p.fields) == 0 {
		return nil
	}

	b := p.b
	b.resetLabels()
	for i := 0; i < len(p.tags); i += 2 {
		k := p.str(p.tags[i])
		if k == "__name__" {
			return newError(ErrDuplicateLabel, `tag "__name__" duplicates the metric name`)
		}
		b.addLabel(k, p.str(p.tags[i+1]))
	}
	b.finishLabels()
	for _, f := range p.fields {
		b.setName(p.str(f.name))
		ref, err := b.seriesRef()
		if err != nil {
			return err
		}
		if err := b.add(ref, ts, f.v); err != nil {
			return err
		}
	}
	return nil
}

// parseInt parses a decimal int64 without allocating.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-9)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return -int64(u), true // -int64(1<<63) wraps to MinInt64, as wanted
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	}
	return 0, false
}

// lpError turns an error met in the entry-th entry of body into an *Error
// naming its line.
func lpError(err error, body []byte, entry int) error {
	var de *lineprotocol.DecodeError
	if errors.As(err, &de) {
		return &Error{Line: int(de.Line), Msg: fmt.Sprintf("column %d: %v", de.Column, de.Err),
			Err: fmt.Errorf("%w: %w", ErrMalformed, de.Err)}
	}
	return atLine(err, entryLine(body, entry))
}

// entryLine returns the line on which the entry-th entry of body starts.
//
// The decoder does not expose its line count, and entries may span lines
// (string fields may hold newlines), so the line is found on this error
// path only, by searching line ends for the shortest prefix of body in which
// the decoder finds entry entries. Entry k starts on line k or later, and
// usually soon after, so the search gallops up from line k before
// bisecting: it decodes the body up to the error a few times, not
// log(lines) times.
func entryLine(body []byte, entry int) int {
	var ends []int // ends[i] is the length of the prefix holding lines 1..i+1
	for i, c := range body {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	ends = append(ends, len(body))
	last := len(ends) - 1
	lo := min(entry-1, last)
	hi := lo
	for step := 1; hi < last && countEntries(body[:ends[hi]]) < entry; step *= 2 {
		lo = hi + 1
		hi = min(hi+step, last)
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if countEntries(body[:ends[mid]]) >= entry {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo + 1
}

func countEntries(b []byte) int {
	dec := lineprotocol.NewDecoderWithBytes(b)
	n := 0
	for dec.Next() {
		n++
	}
	return n
}
