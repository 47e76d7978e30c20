package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// proxiedReader is a reader tier of f's bucket prefix whose GETs go
// through a proxy that can hold them back, with a fixture that reads
// through it.
func proxiedReader(t *testing.T, f *rangedFixture, prefix string) (*rangedFixture, *s3test.Proxy) {
	t.Helper()
	proxy := s3test.NewProxy(t, f.srv)
	b, err := OpenS3(proxy.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	cb := &countingBucket{Bucket: b}
	reader, err := New(nil, cb, newSet(t), Options{Dir: t.TempDir(), Reader: true, RetryMin: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reader.Close() })
	if err := reader.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	rf := *f
	rf.tier, rf.bucket = reader, cb
	return &rf, proxy
}

// checkCacheBlocks fails unless every block file of the tier's read cache
// holds its bytes followed by their CRC32C, and no fetch is in flight.
func checkCacheBlocks(t *testing.T, tier *Tier) {
	t.Helper()
	c := tier.cache.blocks
	c.mtx.Lock()
	inflight := len(c.inflight)
	c.mtx.Unlock()
	if inflight != 0 {
		t.Fatalf("%d blocks still marked in flight", inflight)
	}
	n := 0
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(b) < 4 || crc32.Checksum(b[:len(b)-4], castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
			return fmt.Errorf("damaged block file %s", p)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no block in the cache")
	}
	if d := counterValue(tier.m.damagedBlocks); d != 0 {
		t.Fatalf("%v damaged blocks read", d)
	}
}

// TestRangedReadCancelled: a query reads a bucket segment with its own
// context. Cancelled while its GET is held back by a proxy, it returns at
// once with the context's error (not ErrUnavailable, not corruption) and
// the GET is abandoned: the proxy sees the client give up while it still
// holds the request, where before the GET went on until its 2-minute
// timeout. A query that waits for the same blocks and is not cancelled
// answers once the proxy lets GETs through, as does a later query; no
// block in the cache is damaged. Run it under -race too.
func TestRangedReadCancelled(t *testing.T) {
	f := newRangedFixture(t, 2000, true, 1<<30)
	r, proxy := proxiedReader(t, f, "ranged-true")
	// Open the segment (meta.json, index, chunks header and page table)
	// and read one series, so that what is held is a query's chunk GET.
	if got, err := r.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", "s00010")); err != nil || !reflect.DeepEqual(got, f.wantOf("s00010")) {
		t.Fatalf("first read: %v (or it differs)", err)
	}
	proxy.HoldGets("/chunks/000001")

	one := labels.MustNewMatcher(labels.MatchEqual, "i", "s01900")
	type result struct {
		got map[string][][2]float64
		err error
	}
	read := func(ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() {
			got := map[string][][2]float64{}
			_, err := r.readEachCtx(ctx, t, []*labels.Matcher{one}, func(lset string, ts int64, v float64) {
				got[lset] = append(got[lset], [2]float64{float64(ts), v})
			})
			ch <- result{got, err}
		}()
		return ch
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelled := read(ctx)
	waitFor(t, "the query's GET to be held", func() bool { return proxy.Held() >= 1 })
	// A second query of the same series waits for the first's GET (or
	// makes it, then the first waits for it).
	patient := read(context.Background())
	cancel()
	// Bounded generously, but below readTimeout: without the query's
	// context the read returned only when its GET timed out.
	select {
	case res := <-cancelled:
		if !errors.Is(res.err, context.Canceled) || errors.Is(res.err, ErrUnavailable) {
			t.Fatalf("cancelled query: %v, want context.Canceled", res.err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("a cancelled query did not return while its GET was held")
	}
	waitFor(t, "the held GET to be abandoned", func() bool { return proxy.GaveUp() >= 1 })

	proxy.Release()
	res := <-patient
	if res.err != nil || !reflect.DeepEqual(res.got, f.wantOf("s01900")) {
		t.Fatalf("the query that was not cancelled: %v (or it differs)", res.err)
	}
	if got, err := r.read(t, one); err != nil || !reflect.DeepEqual(got, f.wantOf("s01900")) {
		t.Fatalf("a later query: %v (or it differs)", err)
	}
	checkCacheBlocks(t, r.tier)
	// And with the cache's blocks read from disk, not from memory.
	r.closeSegments()
	c := r.tier.cache.blocks
	c.mtx.Lock()
	c.hot = map[blockKey][]byte{}
	c.mtx.Unlock()
	if got, err := r.read(t); err != nil || !reflect.DeepEqual(got, f.want) {
		t.Fatalf("every series after: %v (or they differ)", err)
	}
	checkCacheBlocks(t, r.tier)
}
