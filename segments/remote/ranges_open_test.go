package remote

import (
	"context"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// keyBucket records the keys of the GETs it passes on.
type keyBucket struct {
	Bucket
	mtx  sync.Mutex
	keys []string // guarded by mtx
}

func (b *keyBucket) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	b.mtx.Lock()
	b.keys = append(b.keys, key)
	b.mtx.Unlock()
	return b.Bucket.Get(ctx, key, off, length)
}

func (b *keyBucket) take() []string {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	k := b.keys
	b.keys = nil
	return k
}

// TestRangedOpenAfterListing: a reader's listing reads the meta.json of
// each new segment; the read cache keeps it, so that the first query of
// the segment opens it without a GET of meta.json.
func TestRangedOpenAfterListing(t *testing.T) {
	f := newRangedFixture(t, 500, true, 1<<30)
	kb := &keyBucket{Bucket: f.bucket.Bucket}
	cb := &countingBucket{Bucket: kb}
	reader, err := New(nil, cb, newSet(t), Options{Dir: t.TempDir(), Reader: true, RetryMin: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reader.Close() })
	if err := reader.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	isMeta := func(k string) bool { return strings.HasSuffix(k, "/"+metaName) }
	if keys := kb.take(); !slices.ContainsFunc(keys, isMeta) {
		t.Fatalf("the listing read no meta.json: %q", keys)
	}
	r := *f
	r.tier, r.bucket = reader, cb
	got, err := r.read(t, labels.MustNewMatcher(labels.MatchEqual, "i", "s00321"))
	if err != nil || !reflect.DeepEqual(got, f.wantOf("s00321")) {
		t.Fatalf("one series: %v (or it differs)", err)
	}
	keys := kb.take()
	t.Logf("one series after the listing: %d GETs", len(keys))
	if slices.ContainsFunc(keys, isMeta) {
		t.Fatalf("opening the segment read its meta.json again: %q", keys)
	}
}
