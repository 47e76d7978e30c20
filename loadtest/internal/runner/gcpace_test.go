package runner

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
)

// TestGCPacerCollectsAtGoal checks that with the pacer on the runtime
// collects nothing by itself and a worker collects once the heap reaches
// the goal, from several workers at once (run it under -race), and that
// stop puts GOGC and the memory limit back.
func TestGCPacerCollectsAtGoal(t *testing.T) {
	before := debug.SetGCPercent(-1)
	debug.SetGCPercent(before)
	if before < 0 {
		t.Skip("GOGC=off in the environment: the pacer does nothing")
	}
	limit := debug.SetMemoryLimit(-1)
	p := startGCPacer()
	if p == nil {
		t.Fatal("no pacer")
	}
	t.Cleanup(p.stop) // again, after the checks below: puts back the same
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Fatalf("GOGC %d while the pacer runs, want off", got)
	}
	if n := p.count.Load(); n != 1 {
		t.Fatalf("%d collections at start, want 1", n)
	}
	cycles := gcCycles()
	s := heapSample()
	goal := p.goal.Load()
	if goal < minHeapGoal || heapBytes(s) >= goal {
		t.Fatalf("goal %d, heap %d", goal, heapBytes(s))
	}
	p.between(s) // under the goal: nothing
	if n := p.count.Load(); n != 1 || gcCycles() != cycles {
		t.Fatalf("collected under the goal: %d by the pacer, %d cycles", n, gcCycles()-cycles)
	}
	// Hold more than the goal's worth: the runtime does not collect
	// (GOGC off, far from the backstop), the next worker to look does,
	// once.
	var keep [][]byte
	for held := uint64(0); held < goal; held += 64 << 10 {
		keep = append(keep, make([]byte, 64<<10))
	}
	if gcCycles() != cycles {
		t.Fatalf("the runtime collected %d times with GOGC off", gcCycles()-cycles)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.between(heapSample())
		}()
	}
	wg.Wait()
	p.between(s) // whoever did not collect above sees the new goal now
	if n := p.count.Load(); n != 2 {
		t.Fatalf("%d collections after reaching the goal, want 2", n)
	}
	if p.goal.Load() <= goal {
		t.Fatalf("goal %d after collecting with %d bytes held, was %d", p.goal.Load(), len(keep)*64<<10, goal)
	}
	runtime.KeepAlive(keep)
	p.stop()
	if got := debug.SetGCPercent(before); got != before {
		t.Fatalf("GOGC %d after stop, want %d", got, before)
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("memory limit %d after stop, want %d", got, limit)
	}
	if limit == math.MaxInt64 && p.limit != limit {
		t.Fatalf("pacer kept limit %d", p.limit)
	}
	var nilPacer *gcPacer
	nilPacer.between(s) // GOGC=off before: nothing to do
	nilPacer.stop()
}
