// Package downsample owns Strata's rollups: segments at coarser resolutions
// (5 minutes and 1 hour) that hold, per series and per bucket, the count,
// sum, min, max and a reset-adjusted counter value of the raw samples, so
// that long-range queries read a few samples per hour instead of hundreds.
// Thanos' AggrChunk is the reference design; the differences are noted
// below.
//
// The package reads raw segments and writes rollup segments into the same
// segments.Set, in the ordinary segment format (docs/format.md). It must not
// change or delete raw segments, and it knows nothing about PromQL beyond
// the semantics its aggregates are defined to match.
//
// # Rollup segments
//
// A rollup segment covers one window: a UTC day, (w, w+Window] with w a
// multiple of Window (24 h), closed on the right like the buckets inside it.
// Its meta has Resolution 300000 (5m) or 3600000 (1h), MinTime w+1 and
// MaxTime w+Window (fixed, whatever the data), Compaction.Level 1, and in
// Compaction.Sources its lineage (below). There is at most one rollup per
// resolution and window; windows never overlap, and no bucket spans two
// windows, so a reader chains the rollups of a series in time order and
// never has to merge partial buckets. A window with raw segments but no
// sample inside it gets an empty rollup, so that it is not looked at again.
//
// Rollups share the set with raw segments: a reader of raw data reads only
// segments with Resolution 0 (rollups hold no KindRaw chunks anyway), and a
// reader of rollups only those of the one resolution it chose.
//
// Each series of a rollup holds five chunk kinds, KindCount, KindSum,
// KindMin, KindMax and KindCounter, with samples at exactly the same
// timestamps, one per bucket, and no other samples (unlike Thanos, the
// counter chunk carries no extra first and last raw samples). Chunks are
// cut at multiples of 144 buckets (12 h of 5m buckets; a 1h rollup has one
// chunk per kind).
//
// # Buckets and timestamps
//
// A bucket of resolution r is the half-open interval (e-r, e] for e a
// multiple of r; a raw sample at t belongs to the bucket that ends at
// BucketEnd(t, r), the smallest multiple of r that is >= t. The aggregates
// of a bucket are stored at timestamp e, the bucket's end, whatever the
// timestamps of its samples. This matches PromQL, whose range selectors
// are closed on the right and open on the left: for an evaluation time T
// and a range R that are both multiples of r, the raw samples in (T-R, T]
// are exactly those of the buckets whose end lies in (T-R, T], so
// min_over_time(x[1h]) at step 1h read from the min chunk of 1h (or 5m)
// rollups equals the raw answer. A sample exactly on the hour is in the
// bucket that ends at that hour, as PromQL puts it in the window that ends
// there. (Thanos uses buckets closed on the left and stamps them with their
// last millisecond, which differs from PromQL for samples on a boundary.)
//
// Buckets with no sample are absent from every chunk: gaps stay gaps.
// The last bucket of a window, ending at w+Window, holds the raw sample at
// exactly w+Window if there is one, which a raw segment of the next day
// holds; rolling up a window reads every raw segment that overlaps it.
//
// # Aggregates
//
// Stale markers (value.StaleNaN) are skipped: they count nowhere, and a
// bucket with only stale markers does not exist. Every other sample,
// including a NaN, counts. For the samples v1..vn of a bucket:
//
//	count    n, as a float.
//	sum      v1+...+vn, with PromQL's compensated (Kahan-Neumaier)
//	         summation; NaN if any vi is NaN, as sum_over_time gives.
//	min      the least vi, ignoring NaN unless every vi is NaN, exactly as
//	         min_over_time does.
//	max      likewise, the greatest.
//	counter  the reset-adjusted counter value at the bucket's last non-NaN
//	         sample (below).
//
// These are what the querier needs for each PromQL function over a range R
// that is a multiple of the resolution, evaluated at multiples of it:
//
//	min_over_time(x[R])    min_over_time over the min chunk
//	max_over_time(x[R])    max_over_time over the max chunk
//	sum_over_time(x[R])    sum_over_time over the sum chunk
//	count_over_time(x[R])  sum_over_time over the count chunk (not
//	                       count_over_time: each sample is a bucket)
//	avg_over_time(x[R])    sum_over_time(sum) / sum_over_time(count)
//	x (plain selector)     sum/count at each bucket end, the bucket's mean;
//	                       with 1h rollups the lookback must be at least
//	                       1h to find a sample
//	rate, increase, irate  the counter chunk, as it is (below)
//
// A 1h rollup is built from the 5m rollup of the same window, never from
// raw data and never from itself: counts and sums add up, min and max
// combine by the rules above, and the counter of an hour is the counter of
// its last 5m bucket. The result equals rolling the raw data up to 1h
// directly (sums up to rounding).
//
// # Counter
//
// The counter aggregate is the series' value adjusted for counter resets
// the way PromQL's rate and increase see them: a value lower than the one
// before it is a reset after which the counter restarted from zero. The
// adjusted value is the raw value plus the sum of the values just before
// every reset so far; so it never decreases, and the difference of two
// counter samples is exactly the increase PromQL counts between the two
// raw samples they stand for (resets included, even one at the first
// sample of a bucket). NaN samples are skipped; a bucket with only NaN
// samples repeats the value before it (NaN if there is none).
//
// The adjustment runs across windows: a window's counters continue from
// the last counter sample of the series in the previous window's rollup,
// taking the raw value of the last sample that counter sample stands for
// (read again from the raw segments) to tell whether the counter reset at
// the boundary. Where that raw sample is gone, the counter continues with
// no increase between the two windows (an error of at most one raw scrape
// interval's increase); where the previous window has no rollup or no such
// series, the counter starts again at the raw value. A reader therefore
// chains the counter chunks of consecutive rollups into one non-decreasing
// sequence and hands it to rate or increase without any reset handling of
// its own. Rebuilding a window rebuilds the windows after it too (their
// lineage names the rollup they continue), so the sequence stays unbroken.
//
// Raw values are not on that scale once the counter has reset, so where a
// query goes on from the last rollup of a series into raw data not yet
// rolled up, the raw samples after the last counter sample (t, adj) must be
// read through NewCounterIterator(raw from t-resolution+1, t, adj), which
// continues the adjusted sequence; spliced as they are, the seam would look
// like a reset to rate.
//
// For increase(x[R]) at T, R and T multiples of the resolution, the counter
// samples in (T-R, T] start at the end of the window's first bucket, so
// PromQL extrapolates over that first bucket instead of over the gap
// before the first raw sample; for a steady counter both agree closely.
// The difference between the counter samples at T-R and at T is exactly
// the raw increase from the last raw sample at or before T-R to the last at
// or before T. Because the adjusted counter never decreases, resets() over
// it finds nothing (as with Thanos). The counter aggregate is computed for
// every series; for a gauge it means nothing.
//
// # Lineage, idempotence and late data
//
// What a rollup was built from is in its Compaction.Sources, as
// "<resolution>:<segment ID>" entries: "0:<id>" for each level-1 raw
// segment (the raw segments' own Compaction.Sources, which survive raw
// compaction) whose data overlaps the window, and "300000:<id>" for the 5m
// rollup it depends on (for a 5m rollup the previous window's, whose
// counters it continues; for a 1h rollup the one it was built from). The
// ":" keeps these entries from being taken for segment IDs by
// segments.OpenSet, which removes every segment that another one lists as
// a source (a compaction's leftover input).
//
// Run derives everything from the set. A 5m rollup is up to date when
// every level-1 source of the raw segments overlapping its window is in
// its lineage and it continues the current rollup of the previous window;
// a 1h rollup when it was built from the current 5m rollup. So a rerun
// writes nothing, a restart redoes nothing, raw compaction changes
// nothing, and a raw segment flushed late into an old window (late
// samples) makes the window's rollup be rebuilt and replaced, followed by
// the rollups that depend on it. (Compaction changes nothing as long as it
// does not bring into a window's overlapping segments level-1 sources
// that were not there when it was rolled up: with the default 2h and 24h
// ranges a day is compacted hours after it ends, long before it is due.
// Longer ranges, or compaction after the rollup, make the window be
// rebuilt once, with the same result: late data merged by compaction
// before Run saw it looks just the same, and must not be missed.) A rollup is not rebuilt when some raw
// segment it was built from is gone (retention): rebuilding from the rest
// would lose data it holds; such windows are counted by the
// strata_downsample_stale_windows gauge.
//
// A delete made after a rollup was built tombstones the rollup too, and
// its tombstones hide whole buckets by their end timestamp, keeping the
// samples of a partly deleted bucket: Run rebuilds a 5m rollup whose
// tombstones hide data of one of its series (the raw tombstones applied),
// followed by the rollups that depend on it.
//
// Until Run has caught up, readers do not wait for it: CheckFreshness
// tells a reader which raw segments under a window the rollup does not
// hold (and whether the window's raw data is all there), and RollupWindow
// rolls one series' raw data up exactly as Run would, so a reader can
// answer from raw data where a rollup is out of date and give the answer
// the rebuilt rollup will give.
//
// A rollup's ID is a ULID whose time is when it was written and whose
// random part is a hash of its resolution, window and lineage (and of the
// ID of the rollup it replaces, since a rollup rebuilt for a delete has
// the same lineage), so that the same inputs at the same time give the
// same bytes. Of two rollups of one
// resolution and window (a crash between writing a rebuilt rollup and
// removing the old one), Run keeps the one with the greater ID.
//
// Raw tombstones are applied when reading raw data, and a rollup's own
// tombstones (which hide buckets by their end timestamp) when building a
// 1h rollup from it.
package downsample
