package segments

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestSetMetas: Metas holds the metas Segments gives, in its order, after
// every change of the set (open, publish, replace, quarantine), and a slice
// it returned before a change stays as it was.
func TestSetMetas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "segments")
	set, err := OpenSet(slog.New(slog.DiscardHandler), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	t0 := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	write := func(hour int, id string) Meta {
		t.Helper()
		c := chunkenc.NewXORChunk()
		app, _ := c.Appender()
		from := t0.Add(time.Duration(hour) * time.Hour)
		for ts := from; ts.Before(from.Add(time.Hour)); ts = ts.Add(time.Minute) {
			app.Append(0, ts.UnixMilli(), float64(ts.Unix()%97))
		}
		m, err := WriteSeries(dir, Meta{ID: id}, []SeriesData{{Labels: labels.FromStrings("__name__", "m", "h", id), Chunks: []ChunkMeta{{Chunk: c}}}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	check := func(what string) []Meta {
		t.Helper()
		var want []Meta
		for _, in := range set.Segments() {
			want = append(want, in.Meta)
		}
		got := set.Metas()
		if len(got) != len(want) || len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Metas %v, Segments' metas %v", what, got, want)
		}
		return got
	}
	check("empty")
	for i, h := range []int{3, 1, 2} {
		if err := set.Publish([]Meta{write(h, fmt.Sprintf("S%d", i))}); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("publish %d", i))
	}
	before := check("three")
	kept := append([]Meta(nil), before...)
	if err := set.Replace([]string{"S1", "S2"}, []Meta{write(1, "R")}); err != nil {
		t.Fatal(err)
	}
	check("replace")
	set.Quarantine("S0", fmt.Errorf("test"))
	if after := check("quarantine"); len(after) != 1 || after[0].ID != "R" {
		t.Fatalf("after replace and quarantine: %v", after)
	}
	if !reflect.DeepEqual(before, kept) {
		t.Fatalf("a slice returned before the changes changed: %v, was %v", before, kept)
	}
}
