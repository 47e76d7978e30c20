package ingest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"
	"github.com/prometheus/prometheus/model/labels"
)

func TestDecodeLineProtocol(t *testing.T) {
	now := time.UnixMilli(1_700_000_123_456).Add(789 * time.Microsecond)
	const nowMs = 1_700_000_123_456
	lim := DefaultLimits()
	tight := Limits{MaxSeriesPerRequest: 2, MaxSamplesPerRequest: 3, MaxLabelsPerSeries: 2, MaxLabelNameLength: 4, MaxLabelValueLength: 8}

	for _, tc := range []struct {
		name      string
		body      string
		precision string
		lim       Limits
		want      []Series
		err       *wantErr
	}{
		{
			name: "all field kinds",
			body: `cpu,host=a,region=eu usage=1.5,idle=2i,count=3u,ok=true,bad=F,msg="hello" 1700000000123456789`,
			want: []Series{
				series(ls("__name__", "cpu_usage", "host", "a", "region", "eu"), Sample{1700000000123, 1.5}),
				series(ls("__name__", "cpu_idle", "host", "a", "region", "eu"), Sample{1700000000123, 2}),
				series(ls("__name__", "cpu_count", "host", "a", "region", "eu"), Sample{1700000000123, 3}),
				series(ls("__name__", "cpu_ok", "host", "a", "region", "eu"), Sample{1700000000123, 1}),
				series(ls("__name__", "cpu_bad", "host", "a", "region", "eu"), Sample{1700000000123, 0}),
			},
		},
		{
			name: "legacy: escaped spaces make invalid names",
			lim:  legacyLimits,
			body: `disk\ io,path=/a\,b\=c,dc=us\ west read\ ops=1,value=-2.5e3 1000000`,
			err:  &wantErr{is: ErrInvalidMetricName, msg: `invalid metric name "disk io_read ops"`, line: 1},
		},
		{
			name: "escaped tag values",
			body: `disk,path=/a\,b\=c,dc=us\ west,q="x" value=-2.5e3 1000000`,
			want: []Series{
				series(ls("__name__", "disk_value", "dc", "us west", "path", "/a,b=c", "q", `"x"`), Sample{1, -2500}),
			},
		},
		{
			name: "missing timestamps get now; comments and blank lines are skipped; lines merge",
			body: "# a comment\n\ncpu,host=a v=1\n   \n  # indented comment\ncpu,host=b v=2\r\ncpu,host=a v=3 5000000000\nmem,host=a s=\"only strings\"\n",
			want: []Series{
				series(ls("__name__", "cpu_v", "host", "a"), Sample{nowMs, 1}, Sample{5000, 3}),
				series(ls("__name__", "cpu_v", "host", "b"), Sample{nowMs, 2}),
			},
		},
		{
			name: "tags out of order merge with sorted ones",
			body: "m,b=2,a=1 f=1 1000000\nm,a=1,b=2 f=2 2000000",
			want: []Series{series(ls("__name__", "m_f", "a", "1", "b", "2"), Sample{1, 1}, Sample{2, 2})},
		},
		{
			name: "big ints and uints become floats",
			body: "m i=-9223372036854775808i,u=18446744073709551615u 0",
			want: []Series{
				series(ls("__name__", "m_i"), Sample{0, -9223372036854775808}),
				series(ls("__name__", "m_u"), Sample{0, 18446744073709551615}),
			},
		},
		{name: "precision s", precision: "s", body: "m f=1 1700000000", want: []Series{series(ls("__name__", "m_f"), Sample{1700000000000, 1})}},
		{name: "precision ms", precision: "ms", body: "m f=1 1700000000001", want: []Series{series(ls("__name__", "m_f"), Sample{1700000000001, 1})}},
		{name: "precision us", precision: "us", body: "m f=1 1700000000001999", want: []Series{series(ls("__name__", "m_f"), Sample{1700000000001, 1})}},
		{name: "precision u", precision: "u", body: "m f=1 1700000000001999", want: []Series{series(ls("__name__", "m_f"), Sample{1700000000001, 1})}},
		{name: "precision ns", precision: "ns", body: "m f=1 1700000000001999999", want: []Series{series(ls("__name__", "m_f"), Sample{1700000000001, 1})}},
		{name: "precision n", precision: "n", body: "m f=1 1700000000001999999", want: []Series{series(ls("__name__", "m_f"), Sample{1700000000001, 1})}},
		{name: "negative ns rounds down", body: "m f=1 -1", want: []Series{series(ls("__name__", "m_f"), Sample{-1, 1})}},
		{name: "missing timestamp at precision s is now in ms", precision: "s", body: "m f=1", want: []Series{series(ls("__name__", "m_f"), Sample{nowMs, 1})}},

		{name: "unknown precision", precision: "h", body: "m f=1", err: &wantErr{is: ErrUnsupported, msg: `unknown precision "h"`}},
		{name: "empty body", body: "", err: &wantErr{is: ErrEmptyBody, msg: "empty body"}},
		{name: "blank body", body: " \n\t\n", err: &wantErr{is: ErrEmptyBody, msg: "empty body"}},
		{
			name: "syntax error names its line",
			body: "m f=1\n# comment\nm,host=a\nm f=2",
			err:  &wantErr{is: ErrMalformed, msg: "line 3: column 9: ", line: 3},
		},
		{name: "bad field value", body: "m f=1\nm f=abc", err: &wantErr{is: ErrMalformed, msg: "line 2: ", line: 2}},
		{name: "bad timestamp", body: "m f=1 12ab", err: &wantErr{is: ErrMalformed, msg: "line 1: ", line: 1}},
		{name: "timestamp overflows at precision s", precision: "s", body: "m f=1\nm f=1 9223372036854775807", err: &wantErr{is: ErrMalformed, msg: `line 2: invalid timestamp "9223372036854775807"`, line: 2}},
		{name: "timestamp overflows int64", body: "m f=1 92233720368547758070", err: &wantErr{is: ErrMalformed, msg: `line 1: invalid timestamp "92233720368547758070"`, line: 1}},
		{
			name: "legacy: invalid metric name names its line",
			lim:  legacyLimits,
			body: "m f=1\n\n1cpu f=1",
			err:  &wantErr{is: ErrInvalidMetricName, msg: `line 3: invalid metric name "1cpu_f"`, line: 3},
		},
		{
			name: "line after a multi-line string field",
			lim:  legacyLimits,
			body: "m f=1,s=\"a\nb\n\"\nm,1abc=x f=1",
			err:  &wantErr{is: ErrInvalidLabelName, msg: `line 4: invalid label name "1abc"`, line: 4},
		},
		{name: "utf8 names", body: "disk.io,host.name=a read.ops=1 1000000000", want: []Series{series(ls("__name__", "disk.io_read.ops", "host.name", "a"), Sample{1000, 1})}},
		{name: "legacy: invalid field name", lim: legacyLimits, body: "m f.x=1", err: &wantErr{is: ErrInvalidMetricName, msg: `line 1: invalid metric name "m_f.x"`}},
		{name: "legacy: invalid tag key", lim: legacyLimits, body: "m f=1\nm,1abc=x f=1", err: &wantErr{is: ErrInvalidLabelName, msg: `line 2: invalid label name "1abc" (ingest.name_validation: legacy) in series m_f{1abc="x"}`, line: 2}},
		{name: "duplicate tag", body: "m,a=1,a=2 f=1", err: &wantErr{is: ErrDuplicateLabel, msg: `line 1: duplicate label name "a"`}},
		{name: "reserved tag", body: "m,__tenant=a f=1", err: &wantErr{is: ErrReservedLabel, msg: `line 1: reserved label name "__tenant"`}},
		{name: "__name__ tag", body: "m,__name__=x f=1", err: &wantErr{is: ErrDuplicateLabel, msg: `line 1: tag "__name__" duplicates the metric name`}},
		{name: "too many series", lim: tight, body: "m a=1,b=2\nm c=3", err: &wantErr{is: ErrTooManySeries, msg: "line 2: too many series: more than 2", line: 2}},
		{name: "too many samples", lim: tight, body: "m a=1,b=2\nm a=1,b=2", err: &wantErr{is: ErrTooManySamples, msg: "line 2: too many samples: more than 3", line: 2}},
		{name: "too many labels", lim: tight, body: "m,a=1,b=2 f=1", err: &wantErr{is: ErrTooManyLabels, msg: "line 1: too many labels: 3, limit is 2"}},
		{name: "label name too long", lim: tight, body: "m,abcde=1 f=1", err: &wantErr{is: ErrLabelTooLong, msg: `line 1: label name "abcde" too long`}},
		{name: "label value too long", lim: tight, body: "m,a=123456789 f=1", err: &wantErr{is: ErrLabelTooLong, msg: `line 1: value of label "a" too long: 9 bytes, limit is 8`}},
		{name: "metric name too long", lim: tight, body: "m f=1\nmeasure field=1", err: &wantErr{is: ErrLabelTooLong, msg: "line 2: metric name too long: 13 bytes, limit is 8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := lim
			if tc.lim != (Limits{}) {
				l = tc.lim
			}
			got, err := DecodeLineProtocol([]byte(tc.body), tc.precision, now, l)
			checkResult(t, got, err, tc.want, tc.err)
			if err == nil {
				checkBatchValid(t, got, l)
			}
		})
	}
}

func TestEntryLine(t *testing.T) {
	body := []byte("a f=1\n\n# c\nb f=1,s=\"x\ny\"\n\nc f=1\nd f=1")
	for entry, want := range map[int]int{1: 1, 2: 4, 3: 7, 4: 8} {
		if got := entryLine(body, entry); got != want {
			t.Errorf("entryLine(%d) = %d, want %d", entry, got, want)
		}
	}
}

// TestEntryLineRandom compares entryLine with a linear search on bodies
// mixing entries, blank lines, comments and multi-line string fields.
func TestEntryLineRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		var buf strings.Builder
		var starts []int // line of each entry
		line := 1
		for range 1 + rng.IntN(30) {
			switch rng.IntN(4) {
			case 0:
				buf.WriteString("\n")
			case 1:
				buf.WriteString("# comment\n")
			case 2:
				starts = append(starts, line)
				buf.WriteString("m f=1,s=\"a\nb\"\n")
				line++
			default:
				starts = append(starts, line)
				buf.WriteString("m f=1\n")
			}
			line++
		}
		body := []byte(buf.String())
		for k, want := range starts {
			if got := entryLine(body, k+1); got != want {
				t.Fatalf("entryLine(entry %d) = %d, want %d in\n%s", k+1, got, want, body)
			}
		}
	}
}

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "-1": -1, "123": 123, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63} {
		if got, ok := parseInt([]byte(in)); !ok || got != want {
			t.Errorf("parseInt(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", "1a", "9223372036854775808", "-9223372036854775809", "+1", strings.Repeat("9", 30)} {
		if got, ok := parseInt([]byte(in)); ok {
			t.Errorf("parseInt(%q) = %d, true; want failure", in, got)
		}
	}
}

func sameBits(a, b Sample) bool { return a.T == b.T && math.Float64bits(a.V) == math.Float64bits(b.V) }

// TestParseDecimal compares parseDecimal with strconv.ParseFloat, bit for
// bit, on random decimals of every length and on edge cases; what it
// does not parse strconv must parse (or refuse) instead.
func TestParseDecimal(t *testing.T) {
	f := func(in string) {
		t.Helper()
		got, ok := parseDecimal([]byte(in), lineprotocol.Float)
		want, err := strconv.ParseFloat(in, 64)
		if ok && (err != nil || math.Float64bits(got) != math.Float64bits(want)) {
			t.Fatalf("parseDecimal(%q) = %v (%x), strconv gives %v (%x), %v", in, got, math.Float64bits(got), want, math.Float64bits(want), err)
		}
	}
	for _, in := range []string{"0", "-0", "0.0", "-0.0", ".5", "-.5", "1.", "007", "9007199254740992", "9007199254740993",
		"-9007199254740992", "0.1", "0.3", "1.7976931348623157", "123456789012345678901", "1.0000000000000000000001",
		"0.0000000000000000000001", "0.00000000000000000000001", "1e5", ".", "-", "", "1..2", "--1", "1-", "+1", "4.9406564584124654"} {
		f(in)
	}
	if _, ok := parseDecimal([]byte("12"), lineprotocol.Int); ok {
		t.Fatal("parseDecimal parsed an integer field's digits as a float")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	hits := 0
	for range 200_000 {
		var in string
		switch rng.IntN(3) {
		case 0: // what agents format: shortest representations
			in = strconv.FormatFloat((rng.Float64()-0.5)*math.Pow(10, float64(rng.IntN(12)-4)), 'f', -1, 64)
		case 1:
			in = strconv.FormatFloat(rng.Float64()*1000, 'f', rng.IntN(25), 64)
		default:
			in = strconv.FormatUint(rng.Uint64()>>rng.IntN(64), 10)
			if k := rng.IntN(len(in) + 1); k < len(in) {
				in = in[:k] + "." + in[k:]
			}
		}
		f(in)
		if _, ok := parseDecimal([]byte(in), lineprotocol.Float); ok {
			hits++
		}
	}
	if hits < 100_000 {
		t.Fatalf("parseDecimal parsed only %d of 200,000 plain decimals", hits)
	}
}

// TestLineSetsEqualBuilder decodes random bodies of lines that repeat
// tag sets (in other orders, with other fields, duplicate fields, empty
// and escaped values, string fields, values of every kind, bad names,
// values and limits) with the lookup of a line's series by its key and
// parseDecimal, and without either (the builder alone and the
// decoder's NextField), and requires the same batch or the same error.
func TestLineSetsEqualBuilder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tagSets := [][]string{
		{"host=a", "dc=x"}, {"dc=x", "host=a"}, {"host=b"}, {}, {"host=a", "dc="},
		{"host=a\\,b", "dc=x\\ y"}, {"host=a", "host=b"}, {"__name__=x"}, {"__r=1"},
		{"host=a", "zz=1", "yy=2", "xx=3"}, {"long_tag_name=v"},
	}
	measurements := []string{"cpu", "mem", "m\\ x", "1m", "mem_"}
	fields := []string{"f=1", "g=2i", "h=3u", "f=4", "ok=true", "s=\"str\"", "value=5.5", "f_=6", "long_field_name=7",
		"f=-0", "f=.5", "f=1.", "f=-.25", "f=47.31849302458183", "f=9007199254740993", "f=12345678901234567890",
		"f=1e5", "f=-1.5E-3", "f=0.1000000000000000000000001", "f=1.2.3", "f=-Inf", "f=1e400", "f=.", "f=-",
		"g=99999999999999999999i", "h=-1u", "ok=F", "ok=tru", "f=abc", "f=0x10"}
	limits := []Limits{DefaultLimits(), legacyLimits,
		{MaxSeriesPerRequest: 6, MaxSamplesPerRequest: 20, MaxLabelsPerSeries: 3, MaxLabelNameLength: 10, MaxLabelValueLength: 8}}
	defer func() { lpLineSets, lpFastValues = true, true }()
	k := newFakeKnown()
	for iter := range 3000 {
		var buf strings.Builder
		for range 1 + rng.IntN(12) {
			buf.WriteString(measurements[rng.IntN(len(measurements))])
			for _, tag := range tagSets[rng.IntN(len(tagSets))] {
				buf.WriteString("," + tag)
			}
			buf.WriteByte(' ')
			for k := range 1 + rng.IntN(4) {
				if k > 0 {
					buf.WriteByte(',')
				}
				buf.WriteString(fields[rng.IntN(len(fields))])
			}
			if rng.IntN(4) > 0 {
				fmt.Fprintf(&buf, " %d", rng.IntN(5)*1_000_000)
			}
			buf.WriteByte('\n')
		}
		body := []byte(buf.String())
		lim := limits[iter%len(limits)]
		now := time.UnixMilli(1_700_000_000_000)
		lpLineSets, lpFastValues = false, false
		want, wantErr := DecodeLineProtocol(body, "", now, lim)
		lpLineSets, lpFastValues = true, true
		for _, known := range []*fakeKnown{nil, k} {
			var got *Batch
			var err error
			if known == nil {
				got, err = DecodeLineProtocol(body, "", now, lim)
			} else {
				got, err = DecodeLineProtocolKnown(body, "", now, lim, known)
			}
			if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("error %v, want %v, for\n%s", err, wantErr, body)
			}
			if err != nil {
				continue
			}
			if len(got.Series) != len(want.Series) {
				t.Fatalf("%d series, want %d, for\n%s", len(got.Series), len(want.Series), body)
			}
			for i := range want.Series {
				g, w := got.Series[i], want.Series[i]
				if !labels.Equal(g.Labels, w.Labels) || g.Hash != w.Hash || !slices.EqualFunc(g.Samples, w.Samples, sameBits) {
					t.Fatalf("series %d: %v %v, want %v %v, for\n%s", i, g.Labels, g.Samples, w.Labels, w.Samples, body)
				}
				if known != nil && g.Handle != known.handle(g.Labels) {
					t.Fatalf("series %d: %v has the handle %v, the store's is %v", i, g.Labels, g.Handle, known.handle(g.Labels))
				}
			}
			checkBatchValid(t, got, lim)
			if known != nil {
				if iter%3 == 0 {
					known.add(got) // the store holds them from now on
				}
				got.Release()
			}
		}
	}
}
