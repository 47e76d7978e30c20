package ingest

import (
	"fmt"
	"sync"
	"testing"
	"time"

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
