package ingest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
)

// TestConcurrentDecode runs decoders side by side, so that -race sees the
// pooled builders and buffers shared between requests, and checks that no
// batch is disturbed by a request decoded after it.
func TestConcurrentDecode(t *testing.T) {
	const workers, rounds = 4, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var kept []*Batch
			for r := range rounds {
				name := fmt.Sprintf("m%d_%d", w, r)
				rw, err := DecodeRemoteWrite(encodeRW(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
					{Labels: pl("__name__", name, "w", fmt.Sprint(w)), Samples: ps(float64(r), float64(w))},
				}}), DefaultLimits())
				if err != nil {
					t.Error(err)
					return
				}
				lp, err := DecodeLineProtocol([]byte(fmt.Sprintf("%s,w=%d f=%d %d", name, w, w, r)), "ms", time.Now(), DefaultLimits())
				if err != nil {
					t.Error(err)
					return
				}
				kept = append(kept, rw, lp)
			}
			for r := range rounds {
				name := fmt.Sprintf("m%d_%d", w, r)
				requireBatch(t, kept[2*r], []Series{series(ls("__name__", name, "w", fmt.Sprint(w)), Sample{int64(r), float64(w)})})
				requireBatch(t, kept[2*r+1], []Series{series(ls("__name__", name+"_f", "w", fmt.Sprint(w)), Sample{int64(r), float64(w)})})
			}
		})
	}
	wg.Wait()
}

// TestConcurrentLineSets has 4 goroutines decode line protocol bodies
// whose lines repeat tag sets, with a store's Known that learns their
// series as they go, so that the pooled line-set state and arena pass
// from request to request and goroutine to goroutine: every batch equals
// the same body decoded alone beforehand. Run it under -race.
func TestConcurrentLineSets(t *testing.T) {
	const workers, rounds = 4, 40
	body := func(w, r int) []byte {
		var sb strings.Builder
		for h := range 5 + (w+r)%7 {
			for ts := range 3 {
				fmt.Fprintf(&sb, "cpu,host=h%d,w=%d,r=%d user=%d.5,sys=%di,idle=%d.25 %d\n", h, w, r%3, h+ts, w, r, 1000*(r*3+ts))
			}
		}
		return []byte(sb.String())
	}
	now := time.UnixMilli(0)
	want := make([][]*Batch, workers)
	for w := range workers {
		for r := range rounds {
			b, err := DecodeLineProtocol(body(w, r), "ms", now, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			want[w] = append(want[w], b)
		}
	}
	k := newFakeKnown()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				got, err := DecodeLineProtocolKnown(body(w, r), "ms", now, DefaultLimits(), k)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got.Series) != len(want[w][r].Series) {
					t.Errorf("worker %d round %d: %d series, want %d", w, r, len(got.Series), len(want[w][r].Series))
					return
				}
				for i, s := range want[w][r].Series {
					g := got.Series[i]
					if !labels.Equal(g.Labels, s.Labels) || g.Name != s.Name || !slices.Equal(g.Samples, s.Samples) {
						t.Errorf("worker %d round %d: series %v %v, want %v %v", w, r, g.Labels, g.Samples, s.Labels, s.Samples)
						return
					}
					if g.Handle != k.handle(g.Labels) && g.Handle != nil {
						t.Errorf("worker %d round %d: %v has another series' handle", w, r, g.Labels)
						return
					}
				}
				k.add(got)
				got.Release()
			}
		})
	}
	wg.Wait()
}
