package remote

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-tsdb/strata/segments/remote/s3test"
)

// tamperingBucket is the real bucket, but the first data object of each
// of its first bad uploads is stored with a byte changed (and the MD5 of
// what is stored, so the server takes it): what a bucket that damages
// what it is sent would hold.
type tamperingBucket struct {
	Bucket
	bad atomic.Int32
}

func (b *tamperingBucket) Put(ctx context.Context, key string, r io.Reader, size int64, sum []byte) error {
	if strings.HasSuffix(key, "/"+metaName) || strings.HasSuffix(key, "/"+namesName) || b.bad.Add(-1) < 0 {
		return b.Bucket.Put(ctx, key, r, size, sum)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	data[len(data)/2] ^= 0x40
	h := md5.Sum(data)
	return b.Bucket.Put(ctx, key, bytes.NewReader(data), size, h[:])
}

// retryLog keeps the retry_in of each failed round the tier logs.
type retryLog struct {
	mtx     sync.Mutex
	retries []time.Duration
}

func (l *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *retryLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *retryLog) WithGroup(string) slog.Handler            { return l }
func (l *retryLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" {
			l.mtx.Lock()
			l.retries = append(l.retries, a.Value.Duration())
			l.mtx.Unlock()
		}
		return true
	})
	return nil
}

func (l *retryLog) take() []time.Duration {
	l.mtx.Lock()
	defer l.mtx.Unlock()
	return slices.Clone(l.retries)
}

// TestUploadVerifiedRetried: an object the bucket does not hold as sent
// (a byte changed) fails the upload's verification: the round fails with
// ErrVerify, meta.json is not uploaded (a reader lists no segment), the
// segment stays local (not verified, so not deleted past Keep) and
// counts as waiting. The background rounds retry after a backoff that
// doubles from RetryMin up to RetryMax (as logged), well before Interval,
// until an upload verifies: then the bucket holds the segment byte for
// byte (the damaged object sent again) and its local copy goes.
func TestUploadVerifiedRetried(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetEnv(t)
	set := newSet(t)
	seg := writeSegment(t, set, 20, t0, t0.Add(2*time.Hour))
	want := localFiles(t, set.Dir()+"/"+seg.ID)
	s3, err := OpenS3(srv.URL("verify"))
	if err != nil {
		t.Fatal(err)
	}
	b := &tamperingBucket{Bucket: s3}
	b.bad.Store(6) // one failed Sync here, then five failed rounds in the background
	log := &retryLog{}
	now := t0.Add(10 * 24 * time.Hour)
	tier, err := New(slog.New(log), b, set, Options{Dir: t.TempDir(), UploadAfter: time.Hour, Keep: time.Hour,
		Interval: time.Hour, RetryMin: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	reader := newTier(t, srv, newSet(t), "verify", Options{Reader: true})

	err = tier.Sync(context.Background())
	if !errors.Is(err, ErrVerify) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("round with a damaged object: %v, want ErrVerify", err)
	}
	if st := tier.Status(); st.BucketUp || st.Queued != 1 || st.BucketSegments != 0 || !strings.Contains(st.LastError, "does not match") {
		t.Fatalf("status %+v", st)
	}
	if ids := localIDs(set); !slices.Equal(ids, []string{seg.ID}) {
		t.Fatalf("local segments %v, want %s kept (not verified in the bucket)", ids, seg.ID)
	}
	if keys := srv.Keys("verify/" + metaKey(seg.ID)); len(keys) != 0 {
		t.Fatal("meta.json uploaded after a failed verification")
	}
	mustSync(t, reader)
	if n := len(reader.Metas()); n != 0 {
		t.Fatalf("a reader lists %d segments, want none", n)
	}

	tier.Start()
	waitFor(t, "the upload to verify and the local copy to go", func() bool {
		return len(localIDs(set)) == 0
	})
	if got, want := log.take(), []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}; !slices.Equal(got, want) {
		t.Fatalf("rounds retried after %v, want %v", got, want)
	}
	got := bucketFiles(t, srv, "verify", seg.ID)
	delete(got, namesName)
	if !maps.EqualFunc(want, got, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("the bucket does not hold the segment byte for byte")
	}
	if n := counterValue(tier.m.uploadFailures); n != 6 {
		t.Fatalf("strata_object_upload_failures_total = %v, want 6", n)
	}
	mustSync(t, reader)
	if n := len(reader.Metas()); n != 1 {
		t.Fatalf("a reader lists %d segments, want 1", n)
	}
}
