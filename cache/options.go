package cache

import (
	"errors"
	"fmt"
	"time"
)

// maxMaxBytes is the largest capacity fastcache accepts: 512 buckets of at
// most 2^40 bytes each, kept well below that.
const maxMaxBytes = 1 << 46

// Options configure a Cache. Start from DefaultOptions and change what you
// need; Validate reports a bad combination.
type Options struct {
	// MaxBytes is the capacity in bytes. fastcache splits it into 512
	// buckets of whole 64 KiB chunks, so the effective capacity (see
	// Stats.MaxBytes) is MaxBytes rounded up to a multiple of 32 MiB, and
	// never below 32 MiB. Must be > 0.
	MaxBytes int

	// TTL is how long an entry stays fresh when compute or Set passes a TTL
	// of zero. Must be > 0.
	TTL time.Duration

	// MaxTTL caps the TTL of any entry. Zero means TTL, so a per-entry TTL
	// can only shorten the default. With Grace it also bounds how long a tag
	// generation must be remembered (see PruneGenerations).
	MaxTTL time.Duration

	// Grace is how long past its TTL an entry is still served, marked stale,
	// while one background refresh recomputes it. Zero disables stale
	// serving: an expired entry is a miss.
	Grace time.Duration

	// RewriteFraction makes eviction approximate LRU: an entry hit after
	// more than RewriteFraction × capacity bytes were written since it was
	// stored is written again, so it moves to the young end of fastcache's
	// write-order ring. Zero disables promotion (plain write-order, i.e.
	// FIFO, eviction). Must be in [0, 1).
	RewriteFraction float64

	// RefreshTimeout bounds one background refresh. Zero means no bound
	// other than Close.
	RefreshTimeout time.Duration

	// MaxEntryBytes is the largest encoded entry (value, key, tags and a
	// 56-byte header) that is stored; a larger computed value is returned to
	// its callers but not cached. Zero means an eighth of the effective
	// capacity.
	MaxEntryBytes int

	// MaxTrackedTags bounds the number of tag generations kept in memory
	// (a few dozen bytes each). When Invalidate pushes the count past it, the
	// older half is dropped and every entry that started computing before
	// the newest dropped bump becomes a miss. Zero means 1<<20.
	MaxTrackedTags int

	// Now returns the wall-clock time. Entries store wall-clock times, so
	// they stay meaningful across a restart. Nil means time.Now.
	Now func() time.Time

	// L2 configures a second tier shared by several instances in Redis,
	// and tag generations shared through it. The zero value (no URL)
	// disables it. See l2.go.
	L2 L2Options
}

// DefaultOptions returns the options Strata starts from: 256 MiB, entries
// fresh for an hour and served stale for five more minutes, promotion after
// a quarter of the capacity was written.
func DefaultOptions() Options {
	return Options{
		MaxBytes:        256 << 20,
		TTL:             time.Hour,
		Grace:           5 * time.Minute,
		RewriteFraction: 0.25,
		RefreshTimeout:  2 * time.Minute,
		MaxTrackedTags:  1 << 20,
	}
}

// Validate reports every invalid field of o in one error.
func (o Options) Validate() error {
	var errs []error
	if o.MaxBytes <= 0 || o.MaxBytes > maxMaxBytes {
		errs = append(errs, fmt.Errorf("MaxBytes %d out of range (0, %d]", o.MaxBytes, maxMaxBytes))
	}
	if o.TTL <= 0 {
		errs = append(errs, fmt.Errorf("TTL %v must be > 0", o.TTL))
	}
	if o.MaxTTL < 0 || (o.MaxTTL > 0 && o.MaxTTL < o.TTL) {
		errs = append(errs, fmt.Errorf("MaxTTL %v must be 0 or >= TTL %v", o.MaxTTL, o.TTL))
	}
	if o.Grace < 0 {
		errs = append(errs, fmt.Errorf("grace %v must be >= 0", o.Grace))
	}
	if !(o.RewriteFraction >= 0 && o.RewriteFraction < 1) {
		errs = append(errs, fmt.Errorf("RewriteFraction %v out of range [0, 1)", o.RewriteFraction))
	}
	if o.RefreshTimeout < 0 {
		errs = append(errs, fmt.Errorf("RefreshTimeout %v must be >= 0", o.RefreshTimeout))
	}
	if o.MaxEntryBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxEntryBytes %d must be >= 0", o.MaxEntryBytes))
	}
	if o.MaxTrackedTags < 0 {
		errs = append(errs, fmt.Errorf("MaxTrackedTags %d must be >= 0", o.MaxTrackedTags))
	}
	if err := o.L2.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cache options: %w", errors.Join(errs...))
	}
	return nil
}

// maxTTL returns the cap on entry TTLs.
func (o Options) maxTTL() time.Duration {
	if o.MaxTTL > 0 {
		return o.MaxTTL
	}
	return o.TTL
}
