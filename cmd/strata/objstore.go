package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/viper"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/query"
	"github.com/strata-tsdb/strata/retention"
	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote"
)

var _ query.RemoteSegments = (*remote.Tier)(nil)

// openTier opens the object storage tier that storage.object.url names;
// nil when it is empty.
func openTier(logger *slog.Logger, v *viper.Viper, set *segments.Set, store *buffer.Store, compact segments.CompactOptions, policy retention.Policy, reg prometheus.Registerer) (*remote.Tier, error) {
	url := v.GetString("storage.object.url")
	reader := v.GetString("role") == "reader"
	if reader && url == "" {
		return nil, errors.New("role reader serves from object storage: set storage.object.url")
	}
	if url == "" {
		if v.GetInt64("storage.local.max_bytes") != 0 || v.GetDuration("storage.local.keep") != 0 {
			return nil, errors.New("storage.local.max_bytes and storage.local.keep need storage.object.url: only segments verified in a bucket are deleted locally")
		}
		return nil, nil
	}
	if reader && v.GetString("cache.l2.redis_url") != "" && v.GetBool("cache.enabled") {
		// Readers sharing the L2 each find a new segment by listing, and
		// each bumps its tags then; until the last has, the others must
		// not take from L2 what a reader that has not found it computed
		// (or one that has, for a reader that has not): the partner rule,
		// with the listing as the delivery (docs/scaling.md).
		if lag, every := v.GetDuration("cache.l2.partner_lag"), v.GetDuration("storage.object.upload_interval"); lag <= 0 || every >= lag {
			return nil, fmt.Errorf("role reader with cache.l2.redis_url: storage.object.upload_interval (%v, how often the bucket is listed) must be below cache.l2.partner_lag (%v), so that every reader finds a new segment before the others serve answers computed with it from the L2", every, lag)
		}
	}
	bucket, err := remote.OpenS3(url)
	if err != nil {
		return nil, fmt.Errorf("storage.object.url: %w", err)
	}
	tier, err := remote.New(logger.With("component", "object-storage"), bucket, set, remote.Options{
		Dir:           filepath.Join(v.GetString("data_dir"), "object-storage"),
		Ranges:        compact.Ranges,
		UploadAfter:   v.GetDuration("storage.object.upload_after"),
		Interval:      v.GetDuration("storage.object.upload_interval"),
		CacheMaxBytes: v.GetInt64("storage.object.cache_max_bytes"),
		Keep:          v.GetDuration("storage.local.keep"),
		MaxLocalBytes: v.GetInt64("storage.local.max_bytes"),
		MinTime:       func(res int64) int64 { return policy.MinTime(res, time.Now()) },
		Exclusive:     store.Exclusive,
		Reader:        reader,
	}, reg)
	if err != nil {
		return nil, fmt.Errorf("object storage: %w", err)
	}
	return tier, nil
}

// readerFingerprint is what sets a reader's cached answers apart from a
// writer's in a shared L2: the role and the bucket and prefix it reads.
func readerFingerprint(v *viper.Viper) string {
	if v.GetString("role") != "reader" {
		return ""
	}
	u, err := url.Parse(v.GetString("storage.object.url"))
	if err != nil {
		return " role=reader"
	}
	return " role=reader bucket=" + u.Host + u.Path
}

// tierDetail is the object storage line of /readyz: the server stays ready
// while the bucket is down (ingest and local reads go on), and says so.
func tierDetail(t *remote.Tier) func() string {
	return func() string {
		st := t.Status()
		if st.BucketUp {
			return fmt.Sprintf("object storage %s: up, %d segments uploading", st.Bucket, st.Queued)
		}
		return fmt.Sprintf("object storage %s: unreachable, %d segments waiting to upload (kept locally): %s", st.Bucket, st.Queued, st.LastError)
	}
}

// readOnlyReason is why writes are refused: set for role reader.
func readOnlyReason(v *viper.Viper) string {
	if v.GetString("role") == "reader" {
		return "this Strata runs with --role=reader and serves queries from object storage only: send writes to a writer"
	}
	return ""
}
