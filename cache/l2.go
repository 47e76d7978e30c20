package cache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// The L2 tier: entries shared by several Strata instances in Redis.
//
// A lookup goes L1 (fastcache) → L2 (Redis) → compute. An L2 hit is
// written into L1 (promoted); a computed value is written to both. An L2
// value is the very entry L1 holds (format.md), snappy-compressed, under a
// key derived from the digest of the cache key, with a Redis TTL that ends
// with the entry's grace period. It is verified and judged by tag
// generations exactly as an L1 entry is, so an L2 hit is never a value
// that a bump (on any instance) invalidated.
//
// The tag generations themselves live in Redis when L2 is on (l2_sync.go),
// so that a snapshot taken on one instance is comparable with a bump made
// on another. Concurrent misses of one key on several instances compute it
// once: the first takes a lock in Redis (SET NX PX, refreshed while it
// computes), the others poll the L2 value until it appears or the lock
// goes (l2_lock.go).
//
// Redis is never needed to answer: every operation has a short deadline,
// errors are counted and make the tier pause, and a request that L2 cannot
// serve is served from L1 or computed.

// L2Options configure the Redis tier.
type L2Options struct {
	// URL of the Redis server (redis://[user:password@]host:port[/db] or
	// rediss:// for TLS, as github.com/redis/go-redis/v9 ParseURL reads
	// it). Empty disables the tier.
	URL string
	// Prefix starts every Redis key and the pub/sub channel the cache
	// uses. Instances that share a prefix share entries and generations;
	// they must hold the same data. Empty means "strata:".
	Prefix string
	// OpTimeout bounds one Redis operation on a request's path (a lookup,
	// a bump, a lock). Zero means 100 ms.
	OpTimeout time.Duration
	// LockTTL is the expiry of a computation lock; its holder refreshes
	// it every LockTTL/3 while it computes, so a dead holder blocks others
	// for at most LockTTL. Zero means 3 s.
	LockTTL time.Duration
	// MaxLockWait bounds how long a miss waits for a computation that
	// another instance holds the lock of before computing itself. Zero
	// means 30 s.
	MaxLockWait time.Duration
	// PartnerLag is how long after a tag was bumped (by any instance: a
	// late write was acknowledged) no entry of that tag is taken from L2:
	// the longest an instance sharing the tier may take to receive a
	// write another one received (its remote-write lag). Within it, an
	// instance may hold extents of the tag computed by one that has the
	// write and another that has not (l2_partner.go). Zero means 1
	// minute; negative disables the rule.
	PartnerLag time.Duration
	// WriteQueue is the number of writes to Redis that may wait for the
	// background writer; beyond it writes are dropped (counted). Zero
	// means 4096.
	WriteQueue int
	// Logger receives one line when Redis becomes unavailable and one
	// when it is back. Nil discards them.
	Logger *slog.Logger
}

// Enabled reports whether o turns the tier on.
func (o L2Options) Enabled() bool { return o.URL != "" }

func (o L2Options) validate() error {
	if !o.Enabled() {
		return nil
	}
	var errs []error
	if _, err := redis.ParseURL(o.URL); err != nil {
		errs = append(errs, fmt.Errorf("L2 URL: %w", err))
	}
	if o.OpTimeout < 0 || o.LockTTL < 0 || o.MaxLockWait < 0 || o.WriteQueue < 0 {
		errs = append(errs, errors.New("L2 timeouts and queue length must be >= 0"))
	}
	return errors.Join(errs...)
}

func (o L2Options) withDefaults() L2Options {
	if o.Prefix == "" {
		o.Prefix = "strata:"
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 100 * time.Millisecond
	}
	if o.LockTTL == 0 {
		o.LockTTL = 3 * time.Second
	}
	if o.MaxLockWait == 0 {
		o.MaxLockWait = 30 * time.Second
	}
	if o.WriteQueue == 0 {
		o.WriteQueue = 4096
	}
	if o.PartnerLag == 0 {
		o.PartnerLag = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// l2Counters are the tier's counters.
type l2Counters struct {
	hits, misses, errors, writes, dropped, lockWaits, resyncs, unshared atomic.Uint64
}

// l2 is the Redis tier of one Cache.
type l2 struct {
	c    *Cache
	opts L2Options
	rdb  *redis.Client

	// keys are the Redis names of the current epoch (l2_sync.go); the
	// generation keys share a hash tag, so the scripts that touch several
	// of them stay on one Redis Cluster slot. channel is the pub/sub
	// channel of every epoch.
	keys    atomic.Pointer[l2Keys]
	channel string

	// refuseAllUntil (unix ns, cache clock): no entry is taken from L2
	// before it (l2_partner.go).
	refuseAllUntil atomic.Int64

	// dir is the directory of a cache loaded with Load: bumps that could
	// not reach Redis are kept there (l2_pending.go). Empty: in memory only.
	dir string

	sync l2SyncState // generation sharing: l2_sync.go

	// skipUntil (unix ns, wall clock) pauses entry reads and writes after
	// an error, so that a slow Redis costs one timeout per pause, not one
	// per request.
	skipUntil atomic.Int64
	// lastErrLog (unix ns) rate-limits the logging of entry errors.
	lastErrLog atomic.Int64

	writes chan l2Write

	tokenBase string        // random per process: lock tokens
	tokenSeq  atomic.Uint64 // numbers lock tokens

	ctx    context.Context // canceled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	m l2Counters
}

// l2Write is a write-behind SET.
type l2Write struct {
	key string
	val []byte // compressed entry
	ttl time.Duration
}

// quietRedis silences go-redis' own logging (it logs every failed dial):
// the cache logs one line per outage itself. It is process-wide, as is
// go-redis' logger.
var quietRedis sync.Once

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// newL2 connects nothing yet: the generation sync loop connects, and
// reconnects, in the background.
func newL2(c *Cache, o L2Options, saved *savedL2, dir string) (*l2, error) {
	o = o.withDefaults()
	ro, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("L2 URL: %w", err)
	}
	quietRedis.Do(func() { redis.SetLogger(discardRedisLog{}) })
	// Deadlines come from the contexts of each call (OpTimeout on a
	// request's path, longer for a resync); the socket timeouts only
	// catch what those miss.
	ro.ContextTimeoutEnabled = true
	ro.ReadTimeout = 10 * time.Second
	ro.WriteTimeout = 10 * time.Second
	ro.DialTimeout = max(2*o.OpTimeout, 200*time.Millisecond)
	ro.DialerRetries = 1
	ro.PoolTimeout = o.OpTimeout
	// One immediate retry, which go-redis makes only for errors that
	// mean the command never ran (a pooled connection to a server that
	// restarted since: EOF, a failed dial), never for timeouts.
	ro.MaxRetries = 1
	ro.MinRetryBackoff, ro.MaxRetryBackoff = -1, -1
	ro.Protocol = 2
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	l := &l2{
		c: c, opts: o, rdb: redis.NewClient(ro),
		channel:   o.Prefix + "{gen}:bumps",
		dir:       dir,
		writes:    make(chan l2Write, o.WriteQueue),
		tokenBase: hex.EncodeToString(rnd[:]),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.initSync(saved)
	l.wg.Add(3)
	go l.syncLoop()
	go l.maintainLoop()
	go l.writeLoop()
	return l, nil
}

// close stops the background work and closes the connections. Writes
// still queued are dropped: L2 is a cache.
func (l *l2) close() {
	l.cancel()
	l.wg.Wait()
	_ = l.rdb.Close()
	l.sync.pendingMu.Lock()
	l.closePendingLocked()
	l.sync.pendingMu.Unlock()
}

// opCtx returns a context for one operation on a request's path.
func (l *l2) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(l.ctx, l.opts.OpTimeout)
}

// valueCtx returns a context for an operation on a request's path whose
// reply may carry an entry of unknown size: twice OpTimeout.
func (l *l2) valueCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(l.ctx, 2*l.opts.OpTimeout)
}

// sizedCtx returns a context for an operation moving n bytes: OpTimeout
// plus time for the bytes at 64 MiB/s.
func (l *l2) sizedCtx(n int) (context.Context, context.CancelFunc) {
	return context.WithTimeout(l.ctx, l.opts.OpTimeout+time.Duration(n)*time.Second/(64<<20))
}

// usable reports whether entries may be read and written now: the
// generations are in sync and no error paused the tier.
func (l *l2) usable() bool {
	return l.synced() && time.Now().UnixNano() >= l.skipUntil.Load()
}

// fail counts an error of an entry operation and pauses entry operations
// briefly. A canceled caller is not an error of Redis.
func (l *l2) fail(op string, err error) {
	if errors.Is(err, context.Canceled) && l.ctx.Err() == nil {
		return
	}
	l.m.errors.Add(1)
	now := time.Now().UnixNano()
	l.skipUntil.Store(now + int64(500*time.Millisecond))
	if last := l.lastErrLog.Load(); now-last > int64(time.Minute) && l.lastErrLog.CompareAndSwap(last, now) {
		l.opts.Logger.Warn("result cache: Redis L2 operation failed; pausing L2 briefly (logged once a minute)", "op", op, "err", err)
	}
}

// entryKey returns the name of the entry of fastcache key fk in the
// epoch of k.
func (k *l2Keys) entryKey(fk []byte) string {
	return k.entry + strconv.FormatUint(binary.LittleEndian.Uint64(fk), 16)
}

// lockKey returns the name of the lock of fastcache key fk in the epoch
// of k.
func (k *l2Keys) lockKey(fk []byte) string {
	return k.lock + strconv.FormatUint(binary.LittleEndian.Uint64(fk), 16)
}

// l2Result says what an L2 read found.
type l2Result uint8

const (
	l2Absent   l2Result = iota // nothing under the key
	l2Found                    // a fresh, valid entry: served
	l2Unusable                 // an entry that is damaged, another key's, invalid or past its TTL
	l2Future                   // an entry whose snapshot is ahead of the generations known here
	l2Error                    // Redis failed
)

// judge decodes a compressed L2 value and says whether it may be served
// for key at now; on l2Found it returns the decoded entry bytes (to
// promote) and the value inside them.
func (l *l2) judge(b []byte, key []byte, now int64) (raw, value []byte, res l2Result) {
	c := l.c
	n, err := snappy.DecodedLen(b)
	if err != nil || n > c.maxEntry {
		c.m.corrupt.Add(1)
		return nil, nil, l2Unusable
	}
	raw, err = snappy.Decode(make([]byte, n), b)
	if err != nil {
		c.m.corrupt.Add(1)
		return nil, nil, l2Unusable
	}
	e, err := decodeEntry(raw)
	if err != nil {
		c.m.corrupt.Add(1)
		return nil, nil, l2Unusable
	}
	if !e.hasKey(key) {
		c.m.collisions.Add(1)
		return nil, nil, l2Unusable
	}
	if !l.partnerMayServe(&e, now) {
		return nil, nil, l2Unusable
	}
	if c.classify(&e, now) != StatusHit {
		// Only fresh entries are taken from L2: stale serving is L1's.
		if e.seq > c.gens.seq.Load() && now < e.expires && e.created <= now+maxClockSkew {
			return nil, nil, l2Future
		}
		return nil, nil, l2Unusable
	}
	return raw, e.value, l2Found
}

// promote stores the decoded L2 entry raw in L1 under fk.
func (l *l2) promote(fk, raw []byte) {
	l.c.store(fk, raw)
}

// get reads key from L2 and, on a hit, promotes it into L1 and returns a
// copy of its value. The shared state is read in the same round trip: the
// entry is judged only if the mirror holds every bump counted in it.
func (l *l2) get(key, fk []byte) ([]byte, l2Result) {
	ctx, cancel := l.valueCtx()
	var sr *stateRead
	var get *redis.StringCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sr = l.queueState(ctx, p)
		get = p.Get(ctx, sr.k.entryKey(fk))
		return nil
	})
	cancel()
	if err != nil && !errors.Is(err, redis.Nil) {
		l.fail("get", err)
		return nil, l2Error
	}
	if !l.current(sr) {
		l.m.misses.Add(1)
		return nil, l2Unusable
	}
	b, err := get.Bytes()
	return l.found(key, fk, b, err)
}

// found judges the reply of a GET of key.
func (l *l2) found(key, fk, b []byte, err error) ([]byte, l2Result) {
	switch {
	case errors.Is(err, redis.Nil):
		l.m.misses.Add(1)
		return nil, l2Absent
	case err != nil:
		l.fail("get", err)
		return nil, l2Error
	}
	raw, value, res := l.judge(b, key, l.c.now().UnixNano())
	if res != l2Found {
		l.m.misses.Add(1)
		return nil, res
	}
	l.m.hits.Add(1)
	l.promote(fk, raw)
	return value, l2Found // value aliases raw, which nothing else holds
}

// put writes the encoded entry ent of key, whose snapshot is seq, to L2,
// to be kept until graceEnd (unix ns): through the background writer, or
// at once with the release of lk when lk is not nil (its waiters poll for
// the value). An entry whose snapshot is a provisional number (taken while
// unsynced) is never shared.
func (l *l2) put(fk, ent []byte, graceEnd int64, seq uint64, lk *l2Lock) {
	if !l.usable() || l.inHole(seq) {
		return
	}
	ttl := time.Duration(graceEnd - l.c.now().UnixNano())
	if ttl < time.Millisecond {
		return
	}
	w := l2Write{key: l.keys.Load().entryKey(fk), val: snappy.Encode(nil, ent), ttl: ttl}
	if lk != nil {
		lk.release(&w)
		return
	}
	select {
	case l.writes <- w:
	default:
		l.m.dropped.Add(1)
	}
}

// writeLoop writes queued entries, pipelining whatever has queued up.
func (l *l2) writeLoop() {
	defer l.wg.Done()
	const maxBatch = 128
	batch := make([]l2Write, 0, maxBatch)
	for {
		select {
		case <-l.ctx.Done():
			return
		case w := <-l.writes:
			batch = append(batch[:0], w)
		}
		size := len(batch[0].val)
	drain:
		for len(batch) < maxBatch && size < 8<<20 {
			select {
			case w := <-l.writes:
				batch = append(batch, w)
				size += len(w.val)
			default:
				break drain
			}
		}
		if !l.usable() {
			l.m.dropped.Add(uint64(len(batch)))
			continue
		}
		// Off the requests' paths: a generous deadline.
		ctx, cancel := context.WithTimeout(l.ctx, max(time.Second, 10*l.opts.OpTimeout)+time.Duration(size)*time.Second/(64<<20))
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, w := range batch {
				p.Set(ctx, w.key, w.val, w.ttl)
			}
			return nil
		})
		cancel()
		if err != nil {
			l.fail("write", err)
			continue
		}
		l.m.writes.Add(uint64(len(batch)))
	}
}

// prefetch reads the shared state and the keys that L1 lacks from L2 in
// pipelined round trips, and promotes the fresh, valid ones. Before it
// returns, the mirror holds every bump counted in the state it read
// (waiting at most OpTimeout for the subscription to deliver them), or
// the instance is unsynced: lookups made after it judge every entry, L1
// or L2, by every bump acknowledged before it was called. It returns how
// many entries it promoted.
func (l *l2) prefetch(ctx context.Context, keys [][]byte) int {
	if !l.usable() {
		return 0
	}
	type want struct {
		key []byte
		fk  [8]byte
	}
	var ws []want
	for _, k := range keys {
		var w want
		w.key = k
		l.c.fastKey(&w.fk, k)
		if !l.c.fc.Has(w.fk[:]) {
			ws = append(ws, w)
		}
	}
	promoted := 0
	const chunk = 256
	first := true
	for first || len(ws) > 0 {
		part := ws[:min(chunk, len(ws))]
		ws = ws[len(part):]
		octx, cancel := context.WithTimeout(ctx, 2*l.opts.OpTimeout)
		var sr *stateRead
		var mget *redis.SliceCmd
		_, err := l.rdb.Pipelined(octx, func(p redis.Pipeliner) error {
			sr = l.queueState(octx, p)
			if len(part) > 0 {
				names := make([]string, len(part))
				for i := range part {
					names[i] = sr.k.entryKey(part[i].fk[:])
				}
				mget = p.MGet(octx, names...)
			}
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, redis.Nil) {
			l.fail("mget", err)
			return promoted
		}
		if first && !l.current(sr) {
			return promoted
		}
		first = false
		if mget == nil {
			break
		}
		for i, v := range mget.Val() {
			s, ok := v.(string)
			if !ok {
				l.m.misses.Add(1)
				continue
			}
			if _, res := l.found(part[i].key, part[i].fk[:], []byte(s), nil); res == l2Found {
				promoted++
			}
		}
	}
	return promoted
}

// newToken returns a token that names one lock holder.
func (l *l2) newToken() string {
	return l.tokenBase + "-" + strconv.FormatUint(l.tokenSeq.Add(1), 36)
}
