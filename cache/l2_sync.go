package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tag generations shared through Redis.
//
// With an L2 tier, Redis holds the one sequence that numbers every
// invalidation of every instance, and the generation of every tag:
//
//	<prefix>{gen}:seq     the counter (INCR)
//	<prefix>{gen}:tags    sorted set: member = tag hash (hex), score = its generation
//	<prefix>{gen}:floor   every snapshot below it is invalid (Reset, prune)
//	<prefix>{gen}:ckpt    sorted set of (seq, time) checkpoints, for pruning by age
//	<prefix>{gen}:bumps   pub/sub channel: "b <tag> <gen> ...", "f <floor>", "s <seq>"
//
// Each instance keeps a mirror of them in its in-memory generations, which
// is what lookups judge entries by, so an L1 hit costs no Redis round trip.
//
//   - Invalidate runs one script that INCRs the counter, records the new
//     number as the tag's generation and PUBLISHes it, and applies the
//     number to the mirror before it returns: the bump is in Redis before
//     the write that caused it is acknowledged, and this instance judges
//     by it at once.
//   - Every instance applies the published bumps to its mirror as they
//     arrive (in publication order, the order of the counter); applying
//     only ever raises numbers, so a message and the reply of the same
//     bump, or one message twice, change nothing.
//   - Snapshot returns the mirror's sequence: a number the shared counter
//     has handed out, so snapshots and generations of all instances are
//     comparable. An entry stored by any instance holds such a snapshot
//     and is valid on any instance while each of its tags has a
//     generation at or below it (and the snapshot is at or above floor).
//
// Unsynced. The mirror can only be trusted while the subscription is up:
// messages published while it is down are lost. When the subscription or
// a bump fails, the instance goes unsynced, remembering the last shared
// number it knew (frozen):
//
//   - L2 is not used (no reads, writes or locks);
//   - an L1 entry created before the instance went unsynced is a miss (it
//     may have been invalidated by a bump this instance did not hear of);
//   - Invalidate bumps locally, with provisional numbers above frozen, and
//     remembers the tag; Snapshot returns the local sequence. Entries
//     computed while unsynced are served from L1 and invalidated by local
//     bumps, as without L2: correctness degrades to misses, never to a
//     stale hit.
//
// Resync. The sync loop re-subscribes (so nothing published from then on
// is lost), then: raises the shared counter above the highest provisional
// number (and publishes that, "s <seq>"), so that no snapshot taken from
// then on equals one; pushes the tags bumped locally (and a pending
// Reset) to Redis, where they get new shared numbers; reads the whole
// shared state in one script; replaces the mirror by it (every entry is a
// miss while it does); and goes synced. Messages received meanwhile are
// applied after. The provisional numbers (frozen, highest] become a
// "hole": an entry whose snapshot lies in a hole is a miss from then on,
// since its snapshot cannot be compared with shared generations. Every
// other entry holds a shared number as its snapshot, every bump it missed
// has a higher one, and every locally bumped tag was bumped again above
// it, so it is judged right.
//
// Identity. If Redis lost its state (restarted without persistence,
// restored an older snapshot, flushed: its run_id changed, or its counter
// went below a number this instance saw), numbers would be handed out
// twice. The first resync after that runs a rebase: the counter is set
// above every number this instance knew and floor to the counter, which
// invalidates every entry anywhere that was computed before. A cache
// loaded from disk keeps its L1 entries only if it was saved while synced
// with the same Redis (run_id and prefix); otherwise it drops them.
//
// A lost message without a disconnect would also leave the mirror
// behind: every few seconds the maintenance loop reads the counter, and
// if the mirror has not reached the value it read the time before, it
// resyncs.

var (
	// bumpScript: KEYS seq, tags; ARGV channel, tag hashes. Returns the
	// generations, in order.
	bumpScript = redis.NewScript(`
local msg = 'b'
local out = {}
for i = 2, #ARGV do
  local g = redis.call('INCR', KEYS[1])
  redis.call('ZADD', KEYS[2], g, ARGV[i])
  msg = msg .. ' ' .. ARGV[i] .. ' ' .. string.format('%d', g)
  out[#out + 1] = g
end
redis.call('PUBLISH', ARGV[1], msg)
return out`)

	// rebaseScript: KEYS seq, floor, tags; ARGV channel, min. Sets the
	// counter to max(counter, min) + 1 and floor to it, drops every tag
	// generation, publishes the floor and returns it. It is Reset, and
	// the recovery from a Redis that lost its state.
	rebaseScript = redis.NewScript(`
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local m = tonumber(ARGV[2])
if m > s then s = m end
s = s + 1
local f = string.format('%d', s)
redis.call('SET', KEYS[1], f)
redis.call('SET', KEYS[2], f)
redis.call('DEL', KEYS[3])
redis.call('PUBLISH', ARGV[1], 'f ' .. f)
return s`)

	// raiseScript: KEYS seq; ARGV channel, min. Raises the counter to
	// min if it is below, publishing the new value; returns the counter.
	raiseScript = redis.NewScript(`
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local m = tonumber(ARGV[2])
if m > s then
  local ms = string.format('%d', m)
  redis.call('SET', KEYS[1], ms)
  redis.call('PUBLISH', ARGV[1], 's ' .. ms)
  return m
end
return s`)

	// readScript: KEYS seq, floor, tags. Returns seq, floor and the tags
	// with their generations, read atomically.
	readScript = redis.NewScript(`
return {redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[2]) or '0',
  redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')}`)

	// pruneScript: KEYS seq, floor, tags, ckpt; ARGV channel, now (ms),
	// cutoff (ms), limit. Records a checkpoint (the counter now), then
	// raises floor to the last checkpoint older than cutoff (every bump
	// up to it is older than cutoff) and, if more than limit tags remain
	// above that, to the generation that leaves limit/2 of them; drops the
	// generations at or below floor and publishes it. Returns floor.
	pruneScript = redis.NewScript(`
local s = redis.call('GET', KEYS[1]) or '0'
redis.call('ZADD', KEYS[4], ARGV[2], s)
local x = 0
local old = redis.call('ZREVRANGEBYSCORE', KEYS[4], '(' .. ARGV[3], '-inf', 'LIMIT', 0, 1)
if #old > 0 then x = tonumber(old[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[3])
local limit = tonumber(ARGV[4])
if limit > 0 and redis.call('ZCOUNT', KEYS[3], '(' .. string.format('%d', x), '+inf') > limit then
  local total = redis.call('ZCARD', KEYS[3])
  local i = total - math.floor(limit / 2) - 1
  local r = redis.call('ZRANGE', KEYS[3], i, i, 'WITHSCORES')
  if #r > 0 and tonumber(r[2]) > x then x = tonumber(r[2]) end
end
local f = tonumber(redis.call('GET', KEYS[2]) or '0')
if x <= f then return f end
local xs = string.format('%d', x)
redis.call('SET', KEYS[2], xs)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', xs)
redis.call('PUBLISH', ARGV[1], 'f ' .. xs)
return x`)
)

// errResync ends a sync session so that the loop resyncs.
var errResync = errors.New("generations must be re-read from Redis")

// savedL2 is what a saved cache says about the Redis its generations came
// from (persist.go).
type savedL2 struct {
	prefix, runID string
	holes         []seqHole
}

// seqHole is a range of provisional numbers, (lo, hi]: snapshots in it are
// not comparable with shared generations.
type seqHole struct{ lo, hi uint64 }

// maxHoles bounds the holes kept; beyond it the two oldest are merged
// (the numbers between them become a hole too: misses, never stale hits).
const maxHoles = 16

// l2SyncState is the state of generation sharing.
type l2SyncState struct {
	// mu is held shared by every change to the generations that goes
	// through Redis or is remembered for it (bumps, resets), and
	// exclusively by a resync.
	mu sync.RWMutex
	// stateMu serializes the transitions between synced and unsynced.
	stateMu sync.Mutex
	// epoch is even while synced, odd while unsynced; it grows at every
	// transition.
	epoch atomic.Uint64
	// replacing is set while a resync replaces the mirror.
	replacing atomic.Bool
	// frozen is the last shared number known when the instance went
	// unsynced; local bumps while unsynced get numbers above it.
	frozen atomic.Uint64
	// holes are the ranges of provisional numbers of past outages; an
	// entry whose snapshot lies in one is a miss. Replaced, never
	// modified.
	holes atomic.Pointer[[]seqHole]
	// outageStart (unix ns, cache clock): L1 entries created before it
	// are misses while unsynced.
	outageStart atomic.Int64

	pendingMu    sync.Mutex
	pending      map[uint64]struct{} // tags bumped locally while unsynced
	pendingReset bool                // a Reset while unsynced

	// Guarded by mu (exclusive) after start; read by Save.
	runID  atomic.Pointer[string] // run_id of the Redis the mirror is from; nil: none yet
	saved  *savedL2               // from Load; used by the first resync
	logged atomic.Bool            // the current outage was logged
	// policyChecked: the eviction policy was checked.
	policyChecked atomic.Bool
	// lastSeen is the counter read by the previous anti-entropy check.
	lastSeen atomic.Uint64
}

func (l *l2) initSync(saved *savedL2) {
	s := &l.sync
	s.pending = make(map[uint64]struct{})
	s.saved = saved
	if saved != nil && len(saved.holes) > 0 {
		h := saved.holes
		s.holes.Store(&h)
	}
	s.frozen.Store(l.c.gens.seq.Load())
	s.outageStart.Store(l.c.now().UnixNano())
	s.epoch.Store(1) // unsynced until the first resync
}

func (l *l2) synced() bool { return l.sync.epoch.Load()&1 == 0 }

// entryUsable reports whether the sync state lets e be judged by the
// mirror: while synced, unless its snapshot lies in a hole; while
// unsynced, only entries created since, and none while the mirror is
// being replaced.
func (l *l2) entryUsable(e *entry) bool {
	s := &l.sync
	if s.epoch.Load()&1 == 1 && (s.replacing.Load() || e.created < s.outageStart.Load()) {
		return false
	}
	return !l.inHole(e.seq)
}

// inHole reports whether seq is a provisional number of a past outage.
func (l *l2) inHole(seq uint64) bool {
	if hp := l.sync.holes.Load(); hp != nil {
		for _, h := range *hp {
			if seq > h.lo && seq <= h.hi {
				return true
			}
		}
	}
	return false
}

// addHole records the hole (lo, hi], dropping holes that floor makes
// irrelevant and merging the oldest beyond maxHoles.
func (l *l2) addHole(lo, hi, floor uint64) {
	s := &l.sync
	var hs []seqHole
	if hp := s.holes.Load(); hp != nil {
		for _, h := range *hp {
			if h.hi >= floor {
				hs = append(hs, h)
			}
		}
	}
	hs = append(hs, seqHole{lo, hi})
	for len(hs) > maxHoles {
		hs[1] = seqHole{min(hs[0].lo, hs[1].lo), max(hs[0].hi, hs[1].hi)}
		hs = hs[1:]
	}
	s.holes.Store(&hs)
}

// markUnsynced makes the instance unsynced (if it was synced) and logs
// the outage once.
func (l *l2) markUnsynced(err error) {
	s := &l.sync
	s.stateMu.Lock()
	if s.epoch.Load()&1 == 0 {
		s.frozen.Store(l.c.gens.seq.Load())
		s.outageStart.Store(l.c.now().UnixNano())
		s.epoch.Add(1)
	}
	s.stateMu.Unlock()
	if l.ctx.Err() == nil && !errors.Is(err, errResync) && s.logged.CompareAndSwap(false, true) {
		l.opts.Logger.Warn("result cache: Redis L2 unavailable; answering from the local cache and the engine until it is back", "err", err)
	}
}

// markSynced ends a resync.
func (l *l2) markSynced() {
	s := &l.sync
	s.stateMu.Lock()
	s.replacing.Store(false)
	l.skipUntil.Store(0) // Redis just answered a resync
	if s.epoch.Load()&1 == 1 {
		s.epoch.Add(1)
	}
	s.stateMu.Unlock()
	if s.logged.CompareAndSwap(true, false) {
		l.opts.Logger.Info("result cache: Redis L2 available again")
	}
}

func tagHex(h uint64) string { return strconv.FormatUint(h, 16) }

// bump gives tag hash h a new generation: a shared one while synced, else
// (or if Redis fails) a local one, remembered for the next resync.
func (l *l2) bump(h uint64, at int64) { l.bumpMany([]uint64{h}, at) }

// bumpMany bumps the tag hashes hs, in one script call per 512 of them.
func (l *l2) bumpMany(hs []uint64, at int64) {
	s := &l.sync
	s.mu.RLock()
	defer s.mu.RUnlock()
	const chunk = 512
	for len(hs) > 0 && l.synced() {
		part := hs[:min(chunk, len(hs))]
		args := make([]any, 1, 1+len(part))
		args[0] = l.channel
		for _, h := range part {
			args = append(args, tagHex(h))
		}
		seen := l.c.gens.seq.Load() // at most the counter now
		ctx, cancel := l.opCtx()
		gens, err := bumpScript.Run(ctx, l.rdb, []string{l.keySeq, l.keyTags}, args...).Int64Slice()
		cancel()
		if err == nil && len(gens) == len(part) && uint64(gens[0]) <= seen {
			// INCR gave a number this instance had seen before it: the
			// counter went back (Redis lost its state), numbers are
			// being handed out again, and these cannot be trusted.
			err = fmt.Errorf("the shared generation counter went back to %d", gens[0])
		} else if err == nil && len(gens) == len(part) {
			for i, h := range part {
				l.c.gens.apply(h, uint64(gens[i]), at)
			}
			hs = hs[len(part):]
			continue
		}
		if err == nil {
			err = fmt.Errorf("bump script returned %d generations for %d tags", len(gens), len(part))
		}
		// The bumps may or may not have happened in Redis: bumping the
		// tags again at the resync covers both.
		l.m.errors.Add(1)
		l.markUnsynced(err)
	}
	if len(hs) == 0 {
		return
	}
	for _, h := range hs {
		l.c.gens.bump(h, at)
	}
	s.pendingMu.Lock()
	for _, h := range hs {
		s.pending[h] = struct{}{}
	}
	s.pendingMu.Unlock()
}

// reset invalidates every entry of every instance (Cache.Reset).
func (l *l2) reset() {
	s := &l.sync
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l.synced() {
		ctx, cancel := l.opCtx()
		f, err := rebaseScript.Run(ctx, l.rdb, []string{l.keySeq, l.keyFloor, l.keyTags}, l.channel, 0).Uint64()
		cancel()
		if err == nil {
			l.c.gens.applyFloor(f)
			return
		}
		l.m.errors.Add(1)
		l.markUnsynced(err)
	}
	l.c.gens.reset()
	s.pendingMu.Lock()
	s.pendingReset = true
	s.pendingMu.Unlock()
}

// syncLoop keeps the instance subscribed and synced, reconnecting with
// backoff.
func (l *l2) syncLoop() {
	defer l.wg.Done()
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for l.ctx.Err() == nil {
		synced, err := l.session()
		if l.ctx.Err() != nil {
			return
		}
		if !errors.Is(err, errResync) {
			l.m.errors.Add(1)
		}
		l.markUnsynced(err)
		if synced {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session subscribes, resyncs and applies messages until the subscription
// fails or a resync is needed. synced says whether it got as far as
// synced.
func (l *l2) session() (synced bool, err error) {
	ctx := l.ctx
	ps := l.rdb.Subscribe(ctx)
	defer ps.Close()
	timeout := l.resyncTimeout()
	sctx, cancel := context.WithTimeout(ctx, timeout)
	err = ps.Subscribe(sctx, l.channel)
	cancel()
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	for {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		msg, err := ps.ReceiveTimeout(ctx, timeout)
		if err != nil {
			return false, fmt.Errorf("subscribe: %w", err)
		}
		if _, ok := msg.(*redis.Subscription); ok {
			break
		}
	}
	// Subscribed: from here on no bump is lost. Those published while
	// the state is read are applied after it.
	if err := l.resync(); err != nil {
		return false, err
	}
	const tick = 200 * time.Millisecond
	var idle time.Duration
	pinged := false
	for {
		// go-redis does not watch contexts while it reads: check.
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		if !l.synced() {
			return true, errResync
		}
		msg, err := ps.ReceiveTimeout(ctx, tick)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return true, err
			}
			// Nothing received: ping when idle, and give up on a
			// connection that does not answer.
			idle += tick
			switch {
			case pinged && idle >= 2*time.Second:
				return true, errors.New("pub/sub connection does not answer")
			case !pinged && idle >= time.Second:
				pctx, cancel := l.opCtx()
				err := ps.Ping(pctx)
				cancel()
				if err != nil {
					return true, err
				}
				pinged, idle = true, 0
			}
			continue
		}
		idle, pinged = 0, false
		if m, ok := msg.(*redis.Message); ok {
			if err := l.applyMessage(m.Payload); err != nil {
				return true, err
			}
		}
	}
}

func (l *l2) resyncTimeout() time.Duration { return max(time.Second, 10*l.opts.OpTimeout) }

// applyMessage applies one published message to the mirror.
func (l *l2) applyMessage(p string) error {
	f := strings.Fields(p)
	if len(f) == 0 {
		return fmt.Errorf("bad generation message %q", p)
	}
	switch {
	case f[0] == "b" && len(f)%2 == 1:
		at := l.c.now().UnixNano()
		for i := 1; i < len(f); i += 2 {
			h, err1 := strconv.ParseUint(f[i], 16, 64)
			g, err2 := strconv.ParseUint(f[i+1], 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("bad generation message %q", p)
			}
			l.c.gens.apply(h, g, at)
		}
	case f[0] == "f" && len(f) == 2:
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("bad generation message %q", p)
		}
		l.c.gens.applyFloor(v)
	case f[0] == "s" && len(f) == 2:
		// The counter skipped numbers nobody bumped with.
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("bad generation message %q", p)
		}
		l.c.gens.raiseSeq(v)
	default:
		return fmt.Errorf("bad generation message %q", p)
	}
	return nil
}

// redisRunID returns the run_id of the Redis server, "" if INFO does not
// give one.
func (l *l2) redisRunID(ctx context.Context) (string, error) {
	info, err := l.rdb.Info(ctx, "server").Result()
	if err != nil {
		var re redis.Error
		if errors.As(err, &re) {
			return "", nil // INFO refused: unknown identity
		}
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return v, nil
		}
	}
	return "", nil
}

// checkEvictionPolicy warns (once per process and prefix) if Redis may
// evict keys without a TTL: the generation keys have none, and losing them
// costs a rebase (every cached entry of every instance is lost).
func (l *l2) checkEvictionPolicy(ctx context.Context) {
	if !l.sync.policyChecked.CompareAndSwap(false, true) {
		return
	}
	info, err := l.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok && strings.HasPrefix(v, "allkeys-") {
			l.opts.Logger.Warn("result cache: Redis may evict the L2 tag generations (maxmemory-policy "+v+"); use volatile-lru or volatile-ttl: entries carry TTLs, generations do not", "policy", v)
		}
	}
}

// resync pushes what was bumped locally to Redis, reads the shared state
// and replaces the mirror by it.
func (l *l2) resync() error {
	s := &l.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(l.ctx, l.resyncTimeout())
	defer cancel()
	keys := []string{l.keySeq, l.keyFloor, l.keyTags}

	runID, err := l.redisRunID(ctx)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	l.checkEvictionPolicy(ctx)
	cur, err := l.rdb.Get(ctx, l.keySeq).Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("resync: %w", err)
	}
	frozen := s.frozen.Load()
	local := l.c.gens.seq.Load() // above frozen if bumped while unsynced
	dropL1 := false
	if prev := s.runID.Load(); prev != nil {
		// Was synced before: a Redis that lost state would hand out
		// numbers again; make every snapshot so far invalid everywhere.
		if runID == "" || runID != *prev || cur < frozen {
			if _, err := rebaseScript.Run(ctx, l.rdb, keys, l.channel, max(frozen, local)).Uint64(); err != nil {
				return fmt.Errorf("resync: rebase: %w", err)
			}
		}
	} else {
		// First sync: keep entries loaded from disk only if they were
		// saved while synced with this very Redis.
		sv := s.saved
		dropL1 = sv == nil || runID == "" || sv.runID != runID || sv.prefix != l.opts.Prefix || cur < frozen
	}

	s.pendingMu.Lock()
	pendingReset := s.pendingReset
	pending := make([]string, 0, len(s.pending))
	for h := range s.pending {
		pending = append(pending, tagHex(h))
	}
	s.pendingMu.Unlock()
	if local > frozen {
		// No snapshot taken from now on may lie in the hole (frozen,
		// local]: the counter goes past it.
		if err := raiseScript.Run(ctx, l.rdb, []string{l.keySeq}, l.channel, local+1).Err(); err != nil {
			return fmt.Errorf("resync: raise: %w", err)
		}
	}
	if pendingReset {
		if _, err := rebaseScript.Run(ctx, l.rdb, keys, l.channel, 0).Uint64(); err != nil {
			return fmt.Errorf("resync: reset: %w", err)
		}
	}
	for len(pending) > 0 {
		part := pending[:min(len(pending), 512)]
		pending = pending[len(part):]
		args := append([]any{l.channel}, toAny(part)...)
		if err := bumpScript.Run(ctx, l.rdb, []string{l.keySeq, l.keyTags}, args...).Err(); err != nil {
			return fmt.Errorf("resync: bump: %w", err)
		}
	}

	vals, err := readScript.Run(ctx, l.rdb, keys).Slice()
	if err != nil {
		return fmt.Errorf("resync: read: %w", err)
	}
	seq, floor, tags, err := parseState(vals)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}

	s.replacing.Store(true)
	if dropL1 {
		l.c.fc.Reset()
	}
	if local > frozen {
		l.addHole(frozen, local, floor)
	}
	l.c.gens.replace(seq, floor, tags, l.c.now().UnixNano())
	s.pendingMu.Lock()
	clear(s.pending)
	s.pendingReset = false
	s.pendingMu.Unlock()
	s.runID.Store(&runID)
	s.lastSeen.Store(seq)
	l.m.resyncs.Add(1)
	l.markSynced()
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// parseState parses the reply of readScript.
func parseState(vals []any) (seq, floor uint64, tags map[uint64]uint64, err error) {
	if len(vals) != 3 {
		return 0, 0, nil, fmt.Errorf("state has %d parts", len(vals))
	}
	num := func(v any) (uint64, error) {
		s, _ := v.(string)
		return strconv.ParseUint(s, 10, 64)
	}
	if seq, err = num(vals[0]); err != nil {
		return 0, 0, nil, fmt.Errorf("bad seq: %w", err)
	}
	if floor, err = num(vals[1]); err != nil {
		return 0, 0, nil, fmt.Errorf("bad floor: %w", err)
	}
	list, _ := vals[2].([]any)
	if len(list)%2 != 0 {
		return 0, 0, nil, errors.New("bad tag list")
	}
	tags = make(map[uint64]uint64, len(list)/2)
	for i := 0; i < len(list); i += 2 {
		hs, _ := list[i].(string)
		h, err1 := strconv.ParseUint(hs, 16, 64)
		g, err2 := num(list[i+1])
		if err1 != nil || err2 != nil {
			return 0, 0, nil, fmt.Errorf("bad tag %v %v", list[i], list[i+1])
		}
		if g > floor {
			tags[h] = g
		}
	}
	if floor > seq {
		return 0, 0, nil, fmt.Errorf("floor %d above seq %d", floor, seq)
	}
	return seq, floor, tags, nil
}

// maintainLoop checks that no bump was missed (every 2 s) and prunes the
// shared generations (every minute).
func (l *l2) maintainLoop() {
	defer l.wg.Done()
	check := time.NewTicker(2 * time.Second)
	defer check.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-check.C:
		}
		if !l.synced() {
			continue
		}
		l.checkSeq()
		if time.Since(lastPrune) >= time.Minute {
			lastPrune = time.Now()
			l.prune()
		}
	}
}

// checkSeq reads the shared counter; if the mirror has not reached the
// value read by the previous check, a bump was missed: resync.
func (l *l2) checkSeq() {
	ctx, cancel := l.opCtx()
	cur, err := l.rdb.Get(ctx, l.keySeq).Uint64()
	cancel()
	if err != nil && !errors.Is(err, redis.Nil) {
		return // the subscription's heartbeat judges the connection
	}
	s := &l.sync
	switch mine := l.c.gens.seq.Load(); {
	case !l.synced():
	case cur < mine:
		// The counter went back: Redis lost its state (restarted
		// without persistence, evicted or deleted the keys). The resync
		// will find out and rebase.
		l.markUnsynced(fmt.Errorf("the shared generation counter went back from %d to %d", mine, cur))
	case mine < s.lastSeen.Load():
		l.markUnsynced(fmt.Errorf("%w: generation %d published but not received", errResync, s.lastSeen.Load()))
	}
	s.lastSeen.Store(cur)
}

// prune bounds the shared generations by age and count.
func (l *l2) prune() {
	c := l.c
	ctx, cancel := context.WithTimeout(l.ctx, l.resyncTimeout())
	defer cancel()
	now := c.now()
	cutoff := now.Add(-(c.opts.maxTTL() + c.opts.Grace))
	err := pruneScript.Run(ctx, l.rdb, []string{l.keySeq, l.keyFloor, l.keyTags, l.keyCkpt},
		l.channel, now.UnixMilli(), cutoff.UnixMilli(), c.trackedTagLimit()).Err()
	if err != nil {
		l.fail("prune", err)
	}
}
