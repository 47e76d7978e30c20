package query

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStoredAnswerAsEncoded: a stored answer comes back as Encode made
// it, whatever it is: its bytes (none, fewer than the stored header, or
// many), its gzip flag and its count of series, for a query and a format
// name of any length; and Release may be called on every Body, more than
// once.
func TestStoredAnswerAsEncoded(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	e := newDiffEnv(t, now)
	e.write(t, gaugeBatch("sa", now.Add(-10*time.Hour), now, 10*time.Second))
	ctx := context.Background()
	long := strings.TrimSuffix(strings.Repeat("max_over_time(sa[5m]) + ", 5), " + ")
	for _, c := range []struct {
		query, format string
		gzip          bool
		step          time.Duration // each case's own: no extent cached by another
		body          func(series int) []byte
	}{
		{`max_over_time(sa[5m])`, "empty", false, time.Minute, func(int) []byte { return nil }},
		{`max_over_time(sa[5m])`, "short", true, 2 * time.Minute, func(n int) []byte { return strconv.AppendInt(nil, int64(n), 10) }},
		{long, "long", false, 3 * time.Minute, func(n int) []byte { return bytes.Repeat([]byte{'s'}, 100*n) }},
		{`max_over_time(sa[5m])`, strings.Repeat("format", 40), true, 4 * time.Minute, func(n int) []byte { return bytes.Repeat([]byte{'f'}, 7*n) }},
	} {
		r := RangeQuery{Query: c.query, Start: now.Add(-8 * time.Hour), End: now.Add(-time.Hour), Step: c.step}
		encoded := 0
		enc := Encoder{Format: c.format, Encode: func(res *Result) (Body, error) {
			encoded++
			n := len(asMatrix(res.Value))
			b := NewBody(func(dst []byte) []byte { return append(dst, c.body(n)...) })
			b.Gzip, b.Series = c.gzip, n
			return b, nil
		}}
		fresh, err := e.frontend.Range(ctx, r, true)
		if err != nil {
			t.Fatal(err)
		}
		series := len(asMatrix(fresh.Value))
		want := c.body(series)
		for i, st := range []CacheStatus{CacheMiss, CacheHit, CacheHit, CacheHit} { // computed, from extents (stored now), stored, stored
			before := encoded
			b, err := e.frontend.RangeBody(ctx, r, false, enc)
			if err != nil {
				t.Fatal(err)
			}
			stored := encoded == before
			if b.Cache != st || stored != (i >= 2) || !bytes.Equal(b.Bytes, want) || b.Gzip != c.gzip || b.Series != series {
				t.Fatalf("%s, format %.10s, answer %d: %s, stored %t, %q gzip %t series %d; want %s, stored %t, %q gzip %t series %d",
					c.query, c.format, i, b.Cache, stored, b.Bytes, b.Gzip, b.Series, st, i >= 2, want, c.gzip, series)
			}
			b.Release()
			b.Release()
		}
	}
	var b Body
	b.Release() // a Body never filled
}
