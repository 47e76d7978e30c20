package query

import (
	"testing"
	"time"
)

// TestChooseResolutionOneMillisecond: a query whose data range is one
// millisecond (a plain selector with a lookback of 1 ms, at one step)
// reads data like any other, from the rollups that cover it; only a
// query reading nothing reads raw data for that reason alone.
func TestChooseResolutionOneMillisecond(t *testing.T) {
	at := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	dmin := at.UnixMilli() // = dmax: the lookback is (at-1ms, at]
	h := int64(Resolution1h)
	src := &coverageSource{cov: map[Resolution][2]int64{Resolution1h: {dmin - h + 1, dmin}}, rawMin: dmin}
	eng, err := NewEngine(nil, nil, src, Options{LookbackDelta: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := eng.ChooseResolution(`x`, at, at, time.Hour, ResolutionAuto); err != nil || got != Resolution1h {
		t.Fatalf("one millisecond of data: chose %s (%v), want 1h", got, err)
	}
}
