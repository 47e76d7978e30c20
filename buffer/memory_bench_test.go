package buffer

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"testing"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/strata-tsdb/strata/ingest"
)

// k8sLabels returns series i of a Kubernetes-like fleet: 10 labels, 10
// metrics per pod, 50 pods per node (as loadtest/scale generates).
func k8sLabels(i int) labels.Labels {
	metrics := []string{"up", "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
		"container_network_receive_bytes_total", "container_network_transmit_bytes_total",
		"container_fs_usage_bytes", "kube_pod_status_ready", "kube_pod_container_status_restarts_total",
		"http_requests_total", "process_resident_memory_bytes"}
	pod := i / len(metrics)
	app := fmt.Sprintf("app-%d", pod/20)
	return labels.FromStrings("__name__", metrics[i%len(metrics)], "cluster", "prod-1", "container", app,
		"instance", fmt.Sprintf("10.%d.%d.%d:8080", pod>>16&255, pod>>8&255, pod&255), "job", "kubernetes-pods",
		"namespace", fmt.Sprintf("ns-%d", pod%100), "node", fmt.Sprintf("node-%d", pod/50),
		"pod", fmt.Sprintf("%s-%08x-%05d", app, uint32(pod*2654435761), pod%100000), "service", app,
		"zone", fmt.Sprintf("eu-west-1%c", 'a'+pod%3))
}

// BenchmarkHeadBytesPerSeries loads 200,000 Kubernetes-like series with 5
// samples each into a head and reports the Go heap it holds per series
// after a GC (heap-bytes/series): the in-memory cost that RSS per series
// follows. STRATA_HEAP_PROFILE=file writes a heap profile of the loaded
// head (go tool pprof -sample_index=inuse_space).
func BenchmarkHeadBytesPerSeries(b *testing.B) {
	const n, perSeries = 200_000, 5
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		// The label sets are made here, as a request decoder makes them,
		// and only the head keeps them.
		lsets := make([]labels.Labels, n)
		for i := range lsets {
			lsets[i] = k8sLabels(i)
		}
		h := newTestHead(b, Options{})
		batch := &ingest.Batch{}
		for i := 0; i < n; i += 2000 {
			batch.Series = batch.Series[:0]
			for j := i; j < min(n, i+2000); j++ {
				ss := make([]ingest.Sample, perSeries)
				for k := range ss {
					ss[k] = ingest.Sample{T: 1_700_000_000_000 + int64(k)*10_000, V: float64(j % 100)}
				}
				batch.Series = append(batch.Series, ingest.Series{Labels: lsets[j], Samples: ss})
			}
			if err := h.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
		batch, lsets = nil, nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/series")
		if p := os.Getenv("STRATA_HEAP_PROFILE"); p != "" {
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.WriteHeapProfile(f); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
		runtime.KeepAlive(h)
	}
}

// TestFlushReleasesItsCopy: what a flush allocates (the series records it
// re-logs, the segment writers' index, a flushItem per series; and, for
// series it re-encodes, their copy) is garbage once it ends. With
// ReleaseMemory the pages it used go back to the OS when the flush ends,
// so the heap the process keeps
// mapped (HeapSys - HeapReleased, what RSS follows) is flat across the
// flush rather than at the flush's peak.
func TestFlushReleasesItsCopy(t *testing.T) {
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{ReleaseMemory: true}, nopSink{dir + "/segments"})
	defer s.wal.Close()
	appendSeries(t, s, 50_000, 1000)
	var before, after runtime.MemStats
	debug.FreeOSMemory() // start from what the head holds
	runtime.ReadMemStats(&before)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	flushAlloc := after.TotalAlloc - before.TotalAlloc
	mapped := func(m *runtime.MemStats) int64 { return int64(m.HeapSys - m.HeapReleased) }
	growth := mapped(&after) - mapped(&before)
	if growth > int64(flushAlloc/4) {
		t.Fatalf("the flush allocated %d MiB and left the mapped heap %d MiB larger", flushAlloc>>20, growth>>20)
	}
	t.Logf("flush allocated %d MiB; mapped heap grew by %d MiB", flushAlloc>>20, growth>>20)
}

// TestMemSeriesSize: the series struct is paid once per series, a million
// times at a million series. Out-of-order data (rare) lives behind one
// pointer and the apply tickets take 32 bits, which brought it from 168
// bytes (the 176-byte size class) to 112. The open chunk's prefetch
// hints (openAt, openTail) took it to 128, the next size class, whose
// objects are each exactly two cache lines (prefetchAhead fetches both).
func TestMemSeriesSize(t *testing.T) {
	if got := unsafe.Sizeof(memSeries{}); got > 128 {
		t.Fatalf("memSeries takes %d bytes, want at most 128", got)
	}
}

// TestMemChunkSize: a float chunk's header is paid once per chunk, one or
// more per series: 32 bytes, the size class below the 48 it took when it
// kept its cost (a float chunk's cost is its number of samples). A
// histogram chunk keeps its cost, and reads it back.
func TestMemChunkSize(t *testing.T) {
	if got := unsafe.Sizeof(memChunk{}); got > 32 {
		t.Fatalf("memChunk takes %d bytes, want at most 32", got)
	}
	o := Options{}.withDefaults()
	s := newMemSeries(1, newSymbolTable().encode(labels.FromStrings("a", "b")))
	var want int64
	for i := range 5 {
		x := sample{T: int64(i), V: 1}
		if i >= 3 {
			h := &histogram.Histogram{Count: 3, Sum: 1, Schema: 0, PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []int64{1, 1}}
			x = sample{T: int64(i), H: h}
		}
		_, c := s.appendLocked(x, &o)
		want += c
	}
	if len(s.chunks) != 1 || s.chunks[0].chunk.Encoding() != chunkenc.EncXOR || s.head.chunk.Encoding() != chunkenc.EncHistogram {
		t.Fatalf("want a closed float chunk and an open histogram chunk")
	}
	if got := s.chunksCostLocked(); got != want || s.chunks[0].cost() != 3 || s.head.cost() != want-3 {
		t.Fatalf("chunks cost %d (float %d, histograms %d), want %d", got, s.chunks[0].cost(), s.head.cost(), want)
	}
}

// TestFlushHoldsNoCopy: a flush streams series by series into the segment
// writers, so halfway through it the live heap holds, beyond the head,
// only what the flush keeps per series to drop what it wrote (a flushItem)
// and the segment writers' index entries, not a copy of the data. It built
// the whole copy first (a snapshot of every series, then every series
// re-encoded), which doubled the process's memory during a flush: about
// 2.3 KB per series here, where each series holds 100 random-walk
// samples (170 bytes now).
func TestFlushHoldsNoCopy(t *testing.T) {
	const n, perSeries = 20_000, 100
	dir := t.TempDir()
	s := openTestStore(t, dir, StoreOptions{}, nopSink{dir + "/segments"})
	defer s.wal.Close()
	fillStore(t, s, n, n*perSeries, 10*n)
	var before runtime.MemStats
	runtime.GC()
	runtime.GC() // and the pools' victim caches with it
	runtime.ReadMemStats(&before)
	var mid uint64
	s.head.testHookFlushedSeries = func(k int) {
		if k == n/2 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			mid = m.HeapAlloc
		}
	}
	mustFlush(t, s)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if mid == 0 {
		t.Fatal("the flush did not report series as it wrote them")
	}
	// Series holding in-order data only are written as their chunks
	// are, the open one sealed (not compacted: that copied every open
	// chunk, 2,609 bytes per series here): nothing per series is copied,
	// decoded, re-encoded or left for the GC, whose headroom would
	// otherwise raise RSS during a flush by as much as a copy would.
	// Re-encoding every series allocated 5,225 bytes per series here;
	// 1,724 now, as when the open chunk was copied into a reused buffer
	// (the series records re-logged at the cut, the segment index).
	alloc := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("the flush allocated %d bytes per series", alloc)
	if alloc > 2000 {
		t.Fatalf("the flush allocated %d bytes per series: it re-encodes what it writes", alloc)
	}
	growth := (int64(mid) - int64(before.HeapAlloc)) / n
	t.Logf("live heap halfway through the flush: %+d bytes per series", growth)
	if growth > 300 {
		t.Fatalf("halfway through the flush the live heap grew by %d bytes per series: the flush holds a copy of the head", growth)
	}
}
