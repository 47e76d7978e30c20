package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
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
	return DecodeLineProtocolKnown(body, precision, now, lim, nil)
}

// DecodeLineProtocolKnown is DecodeLineProtocol with the help of known
// (nil: none), as DecodeRemoteWriteKnown: each series the store holds
// already carries the store's handle of it, and the labels are kept in
// memory that Batch.Release gives back (valid until then), which costs no
// allocation per series.
func DecodeLineProtocolKnown(body []byte, precision string, now time.Time, lim Limits, known Known) (*Batch, error) {
	toMs, err := precisionToMs(precision)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, newError(ErrEmptyBody, "empty body")
	}
	b := getBuilder(lim)
	defer b.release()
	if known != nil {
		b.known, b.epoch = known, known.KnownEpoch()
	}
	st := lpStatePool.Get().(*lpState)
	defer st.release()
	p := lpParser{dec: lineprotocol.NewDecoderWithBytes(body), body: body, b: b, toMs: toMs, now: now.UnixMilli(), lpState: st}
	for entry := 1; p.dec.Next(); entry++ {
		p.entryNum = entry
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
	dec      *lineprotocol.Decoder
	body     []byte
	entryNum int // the entry the decoder is at, from 1
	b        *builder
	toMs     func(int64) (int64, bool)
	now      int64
	*lpState
}

// lpState is the scratch of one request's parse, pooled.
type lpState struct {
	// The decoder's slices are only valid until its next call, so one
	// entry's measurement, tags and field names are copied into buf and
	// referred to by offsets.
	buf    []byte
	tags   []span
	fields []lpField

	// The series of the request's lines by their measurement and tags:
	// an agent sends the same tag set in line after line (one per
	// timestamp), and each of its fields is one series. The first line of
	// a tag set resolves its fields' series through the builder (labels
	// sorted, hashed, compared, validated); the next ones find them here
	// by one lookup of the line's key and one comparison of each field's
	// name. Two lines with equal keys describe the same label sets, so
	// what the first resolved (or refused) holds for them too.
	key   []byte           // the entry's key: measurement and tags (each after its length)
	sets  map[string]int32 // key → index in lsets
	lsets []lineSet
	names []byte // the field names of lsets, back to back
}

type span struct{ start, end int }

type lpField struct {
	name span // <measurement>_<field>
	v    float64
}

// lineSet is a measurement and tag set seen in the request, and the
// series of the fields resolved for it so far.
type lineSet struct{ fields []lineField }

type lineField struct {
	name span  // the field's name, in lpState.names
	ref  int32 // its series in the builder
}

// lpLineSets turns the lookup of a line's series by its key on; tests
// turn it off to compare with the builder alone.
var lpLineSets = true

var lpStatePool = sync.Pool{New: func() any { return &lpState{sets: map[string]int32{}} }}

// maxPooledLineSets bounds the tag sets a pooled lpState keeps room for.
const maxPooledLineSets = 1 << 14

func (st *lpState) release() {
	if len(st.lsets) > maxPooledLineSets || cap(st.buf) > maxPooled || cap(st.names) > 4*maxPooled {
		return
	}
	clear(st.sets)
	for i := range st.lsets {
		st.lsets[i].fields = st.lsets[i].fields[:0]
	}
	st.lsets, st.names = st.lsets[:0], st.names[:0]
	lpStatePool.Put(st)
}

// lineSet returns the index in lsets of the entry's key, adding it.
func (st *lpState) lineSet() int32 {
	if i, ok := st.sets[string(st.key)]; ok {
		return i
	}
	i := int32(len(st.lsets))
	st.sets[string(st.key)] = i
	if len(st.lsets) < cap(st.lsets) {
		st.lsets = st.lsets[:i+1] // keeps the fields slice's room
	} else {
		st.lsets = append(st.lsets, lineSet{})
	}
	return i
}

// fieldRef returns the series of the field name, the i-th of its line,
// in set, or -1. Lines of a set usually list their fields in the same
// order: the i-th field is looked at first.
func (st *lpState) fieldRef(set *lineSet, i int, name []byte) int32 {
	if i < len(set.fields) {
		if f := set.fields[i]; string(st.names[f.name.start:f.name.end]) == string(name) {
			return f.ref
		}
	}
	for _, f := range set.fields {
		if string(st.names[f.name.start:f.name.end]) == string(name) {
			return f.ref
		}
	}
	return -1
}

// appendKeyPart appends b to the key after its length.
func (st *lpState) appendKeyPart(b []byte) {
	st.key = binary.AppendUvarint(st.key, uint64(len(b)))
	st.key = append(st.key, b...)
}

func (p *lpParser) str(s span) string { return yoloString(p.buf[s.start:s.end]) }

// entry decodes the entry the decoder is positioned at.
func (p *lpParser) entry() error {
	p.buf, p.tags, p.fields, p.key = p.buf[:0], p.tags[:0], p.fields[:0], p.key[:0]
	m, err := p.dec.Measurement()
	if err != nil {
		return err
	}
	p.buf = append(p.buf, m...)
	mlen := len(p.buf)
	p.appendKeyPart(m)
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
		p.appendKeyPart(k)
		p.appendKeyPart(v)
	}
	for i := 0; ; i++ {
		k, f, skip, err := p.nextField(i)
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
		if skip {
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

	if !lpLineSets {
		if err := p.describeLabels(); err != nil {
			return err
		}
		for _, f := range p.fields {
			p.b.setName(p.str(f.name))
			ref, err := p.b.seriesRef()
			if err != nil {
				return err
			}
			if err := p.b.add(ref, ts, f.v); err != nil {
				return err
			}
		}
		return nil
	}
	si := p.lineSet()
	described := false
	for i, f := range p.fields {
		name := p.buf[f.name.start+mlen+1 : f.name.end] // the field's own name
		ref := p.fieldRef(&p.lsets[si], i, name)
		if ref < 0 {
			// The first line of the set with this field.
			if !described {
				if err := p.describeLabels(); err != nil {
					return err
				}
				described = true
			}
			p.b.setName(p.str(f.name))
			if ref, err = p.b.seriesRef(); err != nil {
				return err
			}
			start := len(p.names)
			p.names = append(p.names, name...)
			set := &p.lsets[si]
			set.fields = append(set.fields, lineField{name: span{start, len(p.names)}, ref: ref})
		}
		if err := p.b.add(ref, ts, f.v); err != nil {
			return err
		}
	}
	return nil
}

// lpFastValues turns parseDecimal on; tests turn it off to compare with
// the decoder's own parsing.
var lpFastValues = true

// nextField reads the entry's i-th field (from 0): its name and value,
// or skip for a string field (not stored), or a nil name after the last.
func (p *lpParser) nextField(i int) (name []byte, f float64, skip bool, err error) {
	if !lpFastValues {
		k, v, err := p.dec.NextField()
		if err != nil || k == nil {
			return nil, 0, false, err
		}
		return k, fieldValue(v), v.Kind() == lineprotocol.String, nil
	}
	k, kind, raw, err := p.dec.NextFieldBytes()
	if err != nil || k == nil {
		return nil, 0, false, err
	}
	if kind == lineprotocol.String {
		return k, 0, true, nil // NextField takes any string too
	}
	if f, ok := parseDecimal(raw, kind); ok {
		return k, f, false, nil
	}
	// What NextField would parse: the same values, the same errors.
	v, err := lineprotocol.NewValueFromBytes(kind, raw)
	if err != nil {
		return nil, 0, false, fieldError(p.body, p.entryNum, i)
	}
	return k, fieldValue(v), false, nil
}

// fieldValue is the sample of a numeric or boolean field value.
func fieldValue(v lineprotocol.Value) float64 {
	switch v.Kind() {
	case lineprotocol.Float:
		return v.FloatV()
	case lineprotocol.Int:
		return float64(v.IntV())
	case lineprotocol.Uint:
		return float64(v.UintV())
	case lineprotocol.Bool:
		if v.BoolV() {
			return 1
		}
	}
	return 0
}

// describeLabels describes the entry's tags to the builder.
func (p *lpParser) describeLabels() error {
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
	return nil
}

// parseDecimal parses a float field value written as plain decimal
// digits with an optional sign and point ("-12.375", "47", ".5"), whose
// digits make an integer of at most 2⁵³ with at most 22 of them after the
// point, which is what agents mostly send: float64 holds that integer exactly, and
// dividing it by an exact power of ten rounds once, so the result is
// strconv.ParseFloat's, bit for bit (the fast path of its own, Clinger's).
// Anything else (exponents, more digits, Inf, other kinds) is not
// parsed: ok is false.
func parseDecimal(b []byte, kind lineprotocol.ValueKind) (f float64, ok bool) {
	if kind != lineprotocol.Float || len(b) == 0 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var (
		m      uint64
		digits int // significant digits in m
		frac   int // digits after the point
		seen   bool
		point  bool
	)
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			seen = true
			if point {
				frac++
			}
			if m == 0 && c == '0' {
				continue // a leading zero
			}
			m = m*10 + uint64(c-'0')
			digits++
		case c == '.' && !point:
			point = true
		default:
			return 0, false
		}
	}
	if !seen || digits > 19 || m > 1<<53 || frac > len(exactPow10)-1 {
		return 0, false
	}
	f = float64(m) / exactPow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// exactPow10 holds the powers of ten that float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fieldError returns the error the decoder gives for the field-th field
// (from 0) of the entry-th entry (from 1) of body, or a later one of the
// entry: decoding again, on this error path only, gives the decoder's
// own message, line and column.
func fieldError(body []byte, entry, field int) error {
	dec := lineprotocol.NewDecoderWithBytes(body)
	for range entry {
		if !dec.Next() {
			break
		}
	}
	if _, err := dec.Measurement(); err != nil {
		return err
	}
	for {
		k, _, err := dec.NextTag()
		if err != nil {
			return err
		}
		if k == nil {
			break
		}
	}
	for {
		k, _, err := dec.NextField()
		if err != nil {
			return err
		}
		if k == nil {
			return newError(ErrMalformed, fmt.Sprintf("invalid value of field %d", field+1))
		}
	}
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
