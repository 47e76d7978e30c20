package buffer

import (
	"strings"
	"testing"
)

// TestHeadOptionsValidate: Options.Validate at each bound's edge (the
// smallest valid value and the one below it), zero meaning the default
// for the fields that have one, and NewHead refusing what Validate
// refuses and using the defaults for zero fields.
func TestHeadOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		err  string // "" when valid
	}{
		{"zero", Options{}, ""},
		{"defaults", DefaultOptions(), ""},
		{"two chunk samples", Options{ChunkSamples: 2}, ""},
		{"one chunk sample", Options{ChunkSamples: 1}, "chunk samples 1"},
		{"negative chunk samples", Options{ChunkSamples: -1}, "chunk samples -1"},
		{"chunk range 1s", Options{ChunkRange: 1000}, ""},
		{"chunk range under 1s", Options{ChunkRange: 999}, "chunk range 999ms"},
		{"negative chunk range", Options{ChunkRange: -1000}, "chunk range -1000ms"},
		{"one stripe", Options{StripeSize: 1}, ""},
		{"two stripes", Options{StripeSize: 2}, ""},
		{"three stripes", Options{StripeSize: 3}, "stripe size 3"},
		{"negative stripes", Options{StripeSize: -4}, "stripe size -4"},
		{"out-of-order buffer of one", Options{OOOBufferSize: 1}, ""},
		{"negative out-of-order buffer", Options{OOOBufferSize: -1}, "out-of-order buffer size"},
		{"one out-of-order chunk", Options{MaxOOOChunks: 1}, ""},
		{"negative out-of-order chunks", Options{MaxOOOChunks: -1}, "max out-of-order chunks"},
		{"one series", Options{MaxSeries: 1}, ""},
		{"negative series", Options{MaxSeries: -1}, "max series"},
		{"no exemplars", Options{MaxExemplars: 0}, ""},
		{"negative exemplars", Options{MaxExemplars: -1}, "max exemplars"},
		{"one metadata family", Options{MaxMetadataFamilies: 1}, ""},
		{"negative metadata families", Options{MaxMetadataFamilies: -1}, "max metadata families"},
	} {
		err := c.o.Validate()
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: Validate() = %v, want %q", c.name, err, c.err)
		}
		h, err := NewHead(c.o, nil)
		if (err == nil) != (c.err == "") {
			t.Errorf("%s: NewHead: %v, want %q", c.name, err, c.err)
		}
		if err != nil {
			continue
		}
		// Zero fields take the defaults; others are kept.
		want := c.o.withDefaults()
		d := DefaultOptions()
		for _, f := range []struct {
			name      string
			got, orig int64
			def, set  int64
		}{
			{"ChunkSamples", int64(h.opts.ChunkSamples), int64(c.o.ChunkSamples), int64(d.ChunkSamples), int64(want.ChunkSamples)},
			{"ChunkRange", h.opts.ChunkRange, c.o.ChunkRange, d.ChunkRange, want.ChunkRange},
			{"StripeSize", int64(h.opts.StripeSize), int64(c.o.StripeSize), int64(d.StripeSize), int64(want.StripeSize)},
			{"OOOBufferSize", int64(h.opts.OOOBufferSize), int64(c.o.OOOBufferSize), int64(d.OOOBufferSize), int64(want.OOOBufferSize)},
			{"MaxOOOChunks", int64(h.opts.MaxOOOChunks), int64(c.o.MaxOOOChunks), int64(d.MaxOOOChunks), int64(want.MaxOOOChunks)},
		} {
			exp := f.orig
			if f.orig == 0 {
				exp = f.def
			}
			if f.got != exp || f.set != exp {
				t.Errorf("%s: %s %d in the head (withDefaults %d), want %d", c.name, f.name, f.got, f.set, exp)
			}
		}
		if len(h.series.stripes) != int(h.opts.StripeSize) {
			t.Errorf("%s: %d stripes, want %d", c.name, len(h.series.stripes), h.opts.StripeSize)
		}
		if h.opts.flushRunning() {
			t.Errorf("%s: a new head says a flush runs", c.name)
		}
	}
	var o Options // no head: never flushing
	if o.flushRunning() {
		t.Error("options of no head say a flush runs")
	}
}
