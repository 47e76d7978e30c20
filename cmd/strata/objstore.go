package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/spf13/viper"

	"github.com/strata-tsdb/strata/buffer"
	"github.com/strata-tsdb/strata/downsample"
	"github.com/strata-tsdb/strata/query"
	"github.com/strata-tsdb/strata/retention"
	"github.com/strata-tsdb/strata/segments"
	"github.com/strata-tsdb/strata/segments/remote"
)

var _ query.RemoteSegments = (*remote.Group)(nil)

// openTier opens the object storage tier that storage.object.url names;
// nil when it is empty.
func openTier(logger *slog.Logger, v *viper.Viper, set *segments.Set, store *buffer.Store, compact segments.CompactOptions, policy retention.Policy, reg prometheus.Registerer) (*remote.Group, error) {
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
	urls := strings.Split(url, ",")
	if len(urls) > 1 && !reader {
		return nil, errors.New("storage.object.url: a writer uploads to one bucket prefix; several (comma-separated) are for role reader")
	}
	ext, err := parseExternalLabels(v.GetString("storage.object.external_labels"))
	if err != nil {
		return nil, err
	}
	var rollups *downsample.Options // the writer's downsampler's: the tier rebuilds the rollups of days only the bucket holds
	if v.GetBool("downsample.enabled") {
		rollups = &downsample.Options{Raw5mAfter: v.GetDuration("downsample.raw_to_5m_after"), FiveM1hAfter: v.GetDuration("downsample.5m_to_1h_after")}
	}
	var tiers []*remote.Tier
	closeAll := func() {
		for _, t := range tiers {
			_ = t.Close()
		}
	}
	for _, u := range urls {
		bucket, err := remote.OpenS3(strings.TrimSpace(u))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("storage.object.url: %w", err)
		}
		dir, treg, log := filepath.Join(v.GetString("data_dir"), "object-storage"), reg, logger.With("component", "object-storage")
		if len(urls) > 1 {
			// Each prefix its own state and cache, named after it so that
			// reordering the list does not mix them up.
			dir += "-" + sanitizeName(bucket.Name())
			treg = prometheus.WrapRegistererWith(prometheus.Labels{"bucket": bucket.Name()}, reg)
			log = log.With("bucket", bucket.Name())
		}
		// The head's oldest sample (MaxInt64 when it is empty): a day it
		// still holds samples of is not uploaded yet.
		headMin := func() int64 { mint, _ := store.Head().Bounds(); return mint }
		tier, err := remote.New(log, bucket, set, remote.Options{
			Dir:            dir,
			Ranges:         compact.Ranges,
			UploadAfter:    v.GetDuration("storage.object.upload_after"),
			Interval:       v.GetDuration("storage.object.upload_interval"),
			CacheMaxBytes:  cacheShare(v.GetInt64("storage.object.cache_max_bytes"), len(urls)),
			Keep:           v.GetDuration("storage.local.keep"),
			MaxLocalBytes:  v.GetInt64("storage.local.max_bytes"),
			MinTime:        func(res int64) int64 { return policy.MinTime(res, time.Now()) },
			Exclusive:      store.Exclusive,
			HeadMinTime:    headMin,
			Reader:         reader,
			ExternalLabels: ext,
			AbandonedAfter: v.GetDuration("storage.object.abandoned_after"),
			MergeAfter:     v.GetDuration("storage.object.merge_after"),
			MergeMaxDelay:  v.GetDuration("storage.object.merge_max_delay"),
			DeleteDelay:    v.GetDuration("storage.object.delete_delay"),
			Downsample:     rollups,
		}, treg)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("object storage: %w", err)
		}
		tiers = append(tiers, tier)
	}
	return remote.NewGroup(tiers, v.GetString("query.replica_label")), nil
}

// cacheShare is each prefix's part of the read cache's bound: 0 stays 0
// (the default), a bound stays at least 1 byte.
func cacheShare(total int64, n int) int64 {
	if total == 0 {
		return 0
	}
	return max(1, total/int64(n))
}

// parseExternalLabels parses storage.object.external_labels: name=value
// pairs separated by commas.
func parseExternalLabels(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" || !model.LabelName(k).IsValid() {
			return nil, fmt.Errorf("storage.object.external_labels: %q is not name=value", kv)
		}
		out[k] = val
	}
	return out, nil
}

// sanitizeName keeps letters, digits, '-' and '.' of s; the rest become '_'.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// readerFingerprint is what sets a reader's cached answers apart from a
// writer's in a shared L2: the role and the bucket and prefix it reads.
func readerFingerprint(v *viper.Viper) string {
	if v.GetString("role") != "reader" {
		return ""
	}
	var where []string
	for _, raw := range strings.Split(v.GetString("storage.object.url"), ",") {
		if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
			where = append(where, u.Host+u.Path)
		} else {
			where = append(where, raw)
		}
	}
	return " role=reader bucket=" + strings.Join(where, ",") + " replica_label=" + v.GetString("query.replica_label")
}

// tierDetail is the object storage line of /readyz: the server stays ready
// while the bucket is down (ingest and local reads go on), and says so.
func tierDetail(t *remote.Group) func() string {
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
