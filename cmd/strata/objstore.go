package main

import (
	"errors"
	"fmt"
	"log/slog"
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
