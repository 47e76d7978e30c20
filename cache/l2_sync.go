package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
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
// invalidation of every instance, and the generation of every tag, under
// an epoch: a random name that every shared key derives from.
//
//	<prefix>{gen}:epoch           the current epoch E: the sentinel of the whole state
//	<prefix>{gen}:E:seq           the counter (INCR)
//	<prefix>{gen}:E:floor         every snapshot below it is invalid (Reset, prune)
//	<prefix>{gen}:E:tags          sorted set: member = tag hash (hex), score = its
//	                              generation; and the member "~" (score 0), always there
//	<prefix>{gen}:E:ckpt          sorted set of (seq, time) checkpoints, for pruning by age
//	<prefix>e:E:<hex>, l:E:<hex>  entries and locks (l2.go, l2_lock.go)
//	<prefix>{gen}:bumps           pub/sub channel: "b E <tag> <gen> ...", "f E <floor>",
//	                              "s E <seq>", "e E" (a new epoch)
//
// The state of an epoch is intact while the epoch key names it and its
// seq and floor keys and the "~" member of its tags exist. Every script
// checks that before it reads or changes anything, and so does every
// lookup that reads Redis (in the same round trip as the entries it
// reads), the maintenance loop every two seconds and every resync. Losing
// any of these keys (FLUSHALL, a restart without persistence, an
// eviction, a DEL) is therefore detected the next time anyone looks, and
// ends the epoch: the next resync starts a new one (a new name, so every
// entry and lock of the old one is unreachable) and every instance that
// held numbers of the old epoch raises the new epoch's floor above them
// when it adopts it. Nothing of a lost state is ever trusted again, and
// no key is checked on its own: one mechanism covers every loss.
//
// Each instance keeps a mirror of the generations in its in-memory
// generations, which is what lookups judge entries by, so an L1 hit costs
// no Redis round trip.
//
//   - Invalidate runs one script that INCRs the counter, records the new
//     number as the tag's generation and PUBLISHes it, and applies the
//     number to the mirror before it returns: the bump is in Redis before
//     the write that caused it is acknowledged, and this instance judges
//     by it at once.
//   - Every instance applies the published bumps to its mirror as they
//     arrive (in publication order, the order of the counter), and counts
//     the last number it heard. A lookup that reads Redis (Prefetch,
//     which a query calls first, an L2 read, a lock poll) reads the
//     counter in the same round trip; if the subscription has not
//     delivered every number up to it, the lookup waits for it (at most
//     OpTimeout) and otherwise treats the instance as unsynced. So a bump
//     acknowledged by any instance before a query starts is judged by,
//     whatever the pub/sub delay.
//   - Snapshot returns the mirror's sequence: a number the shared counter
//     has handed out, so snapshots and generations of all instances are
//     comparable.
//
// Unsynced. When the subscription, a bump or a state check fails, the
// instance goes unsynced, remembering the last shared number it knew
// (frozen):
//
//   - L2 is not used (no reads, writes or locks);
//   - an L1 entry created before the instance went unsynced is a miss;
//   - Invalidate bumps locally, with provisional numbers above frozen, and
//     remembers the tag: in memory, and, for a cache loaded from a
//     directory, in the file l2-pending there, fsynced before Invalidate
//     returns (so before the write is acknowledged). A restarted process
//     reads that file and pushes the bumps to Redis before it syncs.
//
// Resync. The sync loop re-subscribes (so nothing published from then on
// is lost), then: finds the current epoch, starting a new one if the
// state is missing, incomplete, or older than what this instance saw (a
// restarted Redis, a restored snapshot); if it adopts an epoch other than
// the one its numbers come from, raises that epoch's floor above them and
// drops its L1; else raises the counter above its provisional numbers
// (which become a "hole": entries whose snapshot lies in one are misses);
// pushes the tags bumped locally (and a pending Reset); reads the whole
// state; replaces the mirror by it; removes l2-pending; and goes synced.
//
// A cache loaded from disk keeps its L1 entries only if it was saved while
// synced with the same epoch of the same Redis; otherwise it drops them.
//
// A lost message without a disconnect would also leave the mirror
// behind: the maintenance loop checks the state every two seconds and
// resyncs if the counter it read the time before was never heard of.

// stateCheck starts every script: it fails unless the state of the epoch
// ARGV[1] is intact. KEYS: epoch, seq, floor, tags.
const stateCheck = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 0
  or redis.call('EXISTS', KEYS[3]) == 0 or not redis.call('ZSCORE', KEYS[4], '~') then
  return redis.error_reply('STRATA_LOST the shared cache state of epoch ' .. ARGV[1] .. ' is gone or incomplete')
end
`

// errLostPrefix starts the error of a script that found the state lost.
const errLostPrefix = "STRATA_LOST"

var (
	// bumpScript: KEYS epoch, seq, floor, tags; ARGV epoch, channel, tag
	// hashes. Returns the generations, in order.
	bumpScript = redis.NewScript(stateCheck + `
local msg = 'b ' .. ARGV[1]
local out = {}
for i = 3, #ARGV do
  local g = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[4], g, ARGV[i])
  msg = msg .. ' ' .. ARGV[i] .. ' ' .. string.format('%d', g)
  out[#out + 1] = g
end
redis.call('PUBLISH', ARGV[2], msg)
return out`)

	// rebaseScript: KEYS epoch, seq, floor, tags; ARGV epoch, channel,
	// min, force. Unless force is 0 and floor is above min already, sets
	// the counter to max(counter, min) + 1 and floor to it, drops every
	// tag generation and publishes the floor. Returns floor. With force
	// it is Reset; without, the adoption of an epoch by an instance
	// holding numbers up to min.
	rebaseScript = redis.NewScript(stateCheck + `
local f0 = tonumber(redis.call('GET', KEYS[3]))
local m = tonumber(ARGV[3])
if ARGV[4] == '0' and f0 > m then return f0 end
local s = tonumber(redis.call('GET', KEYS[2]))
if m > s then s = m end
s = s + 1
local f = string.format('%d', s)
redis.call('SET', KEYS[2], f)
redis.call('SET', KEYS[3], f)
redis.call('DEL', KEYS[4])
redis.call('ZADD', KEYS[4], 0, '~')
redis.call('PUBLISH', ARGV[2], 'f ' .. ARGV[1] .. ' ' .. f)
return s`)

	// raiseScript: KEYS epoch, seq, floor, tags; ARGV epoch, channel, min.
	// Raises the counter to min if it is below, publishing the new value;
	// returns the counter.
	raiseScript = redis.NewScript(stateCheck + `
local s = tonumber(redis.call('GET', KEYS[2]))
local m = tonumber(ARGV[3])
if m > s then
  local ms = string.format('%d', m)
  redis.call('SET', KEYS[2], ms)
  redis.call('PUBLISH', ARGV[2], 's ' .. ARGV[1] .. ' ' .. ms)
  return m
end
return s`)

	// readScript: KEYS epoch, seq, floor, tags; ARGV epoch. Returns seq,
	// floor and the tags with their generations, read atomically.
	readScript = redis.NewScript(stateCheck + `
return {redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]),
  redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')}`)

	// createScript: KEYS epoch, and the seq, floor and tags of the new
	// epoch; ARGV the epoch expected now ("" for none), channel, the new
	// epoch, its first counter value. Unless the epoch changed since it
	// was read, starts the new one and publishes it. Returns the epoch
	// now current.
	createScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('DEL', KEYS[4])
redis.call('ZADD', KEYS[4], 0, '~')
redis.call('PUBLISH', ARGV[2], 'e ' .. ARGV[3])
return ARGV[3]`)

	// pruneScript: KEYS epoch, seq, floor, tags, ckpt; ARGV epoch,
	// channel, now (ms), cutoff (ms), limit. Records a checkpoint (the
	// counter now), then raises floor to the last checkpoint older than
	// cutoff (every bump up to it is older than cutoff) and, if more than
	// limit tags remain above that, to the generation that leaves limit/2
	// of them; drops the generations at or below floor and publishes it.
	// Returns floor. The checkpoint's ZADD has no NX: a counter unchanged
	// since the last prune moves its checkpoint to the later time, which
	// only delays the floor (while no tag is bumped), and an instance
	// whose clock is behind may move it earlier, as its own checkpoints
	// would be. Neither can make an answer wrong: a floor only
	// invalidates (snapshots below it), and the bump times of the records
	// it drops stay in droppedAt for the partner rule.
	pruneScript = redis.NewScript(stateCheck + `
local s = redis.call('GET', KEYS[2])
redis.call('ZADD', KEYS[5], ARGV[3], s)
local x = 0
local old = redis.call('ZREVRANGEBYSCORE', KEYS[5], '(' .. ARGV[4], '-inf', 'LIMIT', 0, 1)
if #old > 0 then x = tonumber(old[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[4])
local limit = tonumber(ARGV[5])
if limit > 0 and redis.call('ZCOUNT', KEYS[4], '(' .. string.format('%d', x), '+inf') > limit then
  local total = redis.call('ZCARD', KEYS[4])
  local i = total - math.floor(limit / 2) - 1
  local r = redis.call('ZRANGE', KEYS[4], i, i, 'WITHSCORES')
  if #r > 0 and tonumber(r[2]) > x then x = tonumber(r[2]) end
end
local f = tonumber(redis.call('GET', KEYS[3]))
if x <= f then return f end
local xs = string.format('%d', x)
redis.call('SET', KEYS[3], xs)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', xs)
redis.call('ZADD', KEYS[4], 0, '~')
redis.call('PUBLISH', ARGV[2], 'f ' .. ARGV[1] .. ' ' .. xs)
return x`)
)

// l2Keys are the Redis names of one epoch.
type l2Keys struct {
	epoch                  string // "" before the first sync: nothing to use
	epochKey               string
	seq, floor, tags, ckpt string
	entry, lock            string // prefixes of entry and lock keys
}

// keysFor returns the names of epoch e.
func (l *l2) keysFor(e string) *l2Keys {
	p := l.opts.Prefix
	g := p + "{gen}:" + e + ":"
	return &l2Keys{
		epoch: e, epochKey: p + "{gen}:epoch",
		seq: g + "seq", floor: g + "floor", tags: g + "tags", ckpt: g + "ckpt",
		entry: p + "e:" + e + ":", lock: p + "l:" + e + ":",
	}
}

// state returns the KEYS of the scripts that check the state.
func (k *l2Keys) state() []string { return []string{k.epochKey, k.seq, k.floor, k.tags} }

// isLost reports whether err says the state of an epoch is lost.
func isLost(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), errLostPrefix)
}

// errResync ends a sync session so that the loop resyncs.
var errResync = errors.New("generations must be re-read from Redis")

// savedL2 is what a saved cache says about the Redis its generations came
// from (persist.go).
type savedL2 struct {
	prefix, epoch, runID string
	holes                []seqHole
}

// seqHole is a range of provisional numbers, (lo, hi]: snapshots in it are
// not comparable with shared generations.
type seqHole struct{ lo, hi uint64 }

// maxHoles bounds the holes kept; beyond it the two oldest are merged
// (the numbers between them become a hole too: misses, never stale hits).
const maxHoles = 16

// l2Origin names the shared state the mirror's numbers come from.
type l2Origin struct{ epoch, runID string }

// l2SyncState is the state of generation sharing.
type l2SyncState struct {
	// mu is held shared by every change to the generations that goes
	// through Redis or is remembered for it (bumps, resets), and
	// exclusively by a resync.
	mu sync.RWMutex
	// stateMu serializes the transitions between synced and unsynced.
	stateMu sync.Mutex
	// phase is even while synced, odd while unsynced; it grows at every
	// transition.
	phase atomic.Uint64
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
	// heard is the last shared number delivered by the subscription (or
	// read by a resync): every bump up to it is in the mirror. heardCh is
	// closed, and replaced, when heard grows.
	heard   atomic.Uint64
	heardCh atomic.Pointer[chan struct{}]

	pendingMu    sync.Mutex
	pending      map[uint64]struct{} // tags bumped locally while unsynced
	pendingReset bool                // a Reset while unsynced
	pendingFile  *os.File            // l2-pending, open while it holds records; guarded by pendingMu
	// pendingUnsaved: an append to l2-pending failed; the next one writes
	// all of pending. pendingLogged: that failure was logged.
	pendingUnsaved, pendingLogged bool

	// origin is the shared state the mirror is from; nil before the first
	// sync. Written by resync with mu held exclusively.
	origin atomic.Pointer[l2Origin]
	saved  *savedL2    // from Load; used by the first resync
	logged atomic.Bool // the current outage was logged
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
	ch := make(chan struct{})
	s.heardCh.Store(&ch)
	s.frozen.Store(l.c.gens.seq.Load())
	s.outageStart.Store(l.c.now().UnixNano())
	s.phase.Store(1) // unsynced until the first resync
	l.keys.Store(l.keysFor(""))
	l.loadPending()
}

func (l *l2) synced() bool { return l.sync.phase.Load()&1 == 0 }

// entryUsable reports whether the sync state lets e be judged by the
// mirror: while synced, unless its snapshot lies in a hole; while
// unsynced, only entries created since, and none while the mirror is
// being replaced.
func (l *l2) entryUsable(e *entry) bool {
	s := &l.sync
	if s.phase.Load()&1 == 1 && (s.replacing.Load() || e.created < s.outageStart.Load()) {
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
	if hi > lo {
		hs = append(hs, seqHole{lo, hi})
	}
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
	if s.phase.Load()&1 == 0 {
		s.frozen.Store(l.c.gens.seq.Load())
		s.outageStart.Store(l.c.now().UnixNano())
		s.phase.Add(1)
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
	if s.phase.Load()&1 == 1 {
		s.phase.Add(1)
	}
	s.stateMu.Unlock()
	if s.logged.CompareAndSwap(true, false) {
		l.opts.Logger.Info("result cache: Redis L2 available again")
	}
}

// hear records that every shared number up to n is in the mirror.
func (l *l2) hear(n uint64) {
	s := &l.sync
	for {
		old := s.heard.Load()
		if n <= old {
			return
		}
		if s.heard.CompareAndSwap(old, n) {
			break
		}
	}
	ch := make(chan struct{})
	close(*s.heardCh.Swap(&ch))
}

// caughtUp waits until the mirror holds every shared number up to seq,
// at most OpTimeout; it reports false (and makes the instance unsynced,
// so that it resyncs) if it does not.
func (l *l2) caughtUp(seq uint64) bool {
	s := &l.sync
	if s.heard.Load() >= seq {
		return l.synced()
	}
	t := time.NewTimer(l.opts.OpTimeout)
	defer t.Stop()
	for {
		ch := s.heardCh.Load()
		if s.heard.Load() >= seq {
			return l.synced()
		}
		select {
		case <-*ch:
		case <-t.C:
			l.markUnsynced(fmt.Errorf("%w: generation %d was not delivered by the subscription within %v", errResync, seq, l.opts.OpTimeout))
			return false
		case <-l.ctx.Done():
			return false
		}
	}
}

// stateRead is the state check queued in a pipeline beside the entries a
// lookup reads.
type stateRead struct {
	k     *l2Keys
	epoch *redis.StringCmd
	seq   *redis.StringCmd
	floor *redis.IntCmd
	tags  *redis.FloatCmd
}

// queueState queues the reads that check the state in p.
func (l *l2) queueState(ctx context.Context, p redis.Pipeliner) *stateRead {
	k := l.keys.Load()
	return &stateRead{
		k: k, epoch: p.Get(ctx, k.epochKey), seq: p.Get(ctx, k.seq),
		floor: p.Exists(ctx, k.floor), tags: p.ZScore(ctx, k.tags, "~"),
	}
}

// intact reports whether sr found the state intact, and its counter.
func (sr *stateRead) intact() (uint64, bool) {
	seq, err := sr.seq.Uint64()
	return seq, err == nil && sr.k.epoch != "" && sr.epoch.Val() == sr.k.epoch &&
		sr.floor.Val() == 1 && sr.tags.Err() == nil
}

// current reports whether what sr read lets this instance judge entries
// now: the state is intact and the mirror holds every bump counted in it
// (waiting at most OpTimeout for the subscription). Otherwise the
// instance goes unsynced.
func (l *l2) current(sr *stateRead) bool {
	seq, ok := sr.intact()
	if !ok {
		l.markUnsynced(fmt.Errorf("%w: the shared state of epoch %q is gone or incomplete", errResync, sr.k.epoch))
		return false
	}
	return l.caughtUp(seq)
}

func tagHex(h uint64) string { return strconv.FormatUint(h, 16) }

// bump gives tag hash h a new generation: a shared one while synced, else
// (or if Redis fails) a local one, remembered for the next resync.
func (l *l2) bump(h uint64, at int64) error { return l.bumpMany([]uint64{h}, at) }

// bumpMany bumps the tag hashes hs, in one script call per 512 of them.
// It returns ErrInvalidationNotDurable (wrapped) if Redis did not take
// some of them and they could not be kept on disk (l2_pending.go); the
// bumps are made locally all the same.
func (l *l2) bumpMany(hs []uint64, at int64) error {
	s := &l.sync
	var why error // what Redis answered
	s.mu.RLock()
	defer s.mu.RUnlock()
	const chunk = 512
	for len(hs) > 0 && l.synced() {
		part := hs[:min(chunk, len(hs))]
		k := l.keys.Load()
		args := make([]any, 2, 2+len(part))
		args[0], args[1] = k.epoch, l.channel
		for _, h := range part {
			args = append(args, tagHex(h))
		}
		seen := l.c.gens.seq.Load() // at most the counter now
		ctx, cancel := l.opCtx()
		gens, err := bumpScript.Run(ctx, l.rdb, k.state(), args...).Int64Slice()
		cancel()
		if err == nil && len(gens) == len(part) && uint64(gens[0]) <= seen {
			// INCR gave a number this instance had seen before it: the
			// counter went back (a restored snapshot), numbers are being
			// handed out again, and these cannot be trusted.
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
		if isLost(err) {
			err = fmt.Errorf("%w: %v", errResync, err)
		}
		// The bumps may or may not have happened in Redis: bumping the
		// tags again at the resync covers both.
		l.m.errors.Add(1)
		l.markUnsynced(err)
		why = err
	}
	if len(hs) == 0 {
		return nil
	}
	for _, h := range hs {
		l.c.gens.bump(h, at)
	}
	s.pendingMu.Lock()
	for _, h := range hs {
		s.pending[h] = struct{}{}
	}
	err := l.persistPendingLocked(hs, false, why)
	s.pendingMu.Unlock()
	return err
}

// reset invalidates every entry of every instance (Cache.Reset). Its
// error is bumpMany's.
func (l *l2) reset() error {
	s := &l.sync
	var why error
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l.synced() {
		k := l.keys.Load()
		ctx, cancel := l.opCtx()
		f, err := rebaseScript.Run(ctx, l.rdb, k.state(), k.epoch, l.channel, 0, 1).Uint64()
		cancel()
		if err == nil {
			l.c.gens.applyFloor(f)
			return nil
		}
		if isLost(err) {
			err = fmt.Errorf("%w: %v", errResync, err)
		}
		l.m.errors.Add(1)
		l.markUnsynced(err)
		why = err
	}
	l.c.gens.reset()
	s.pendingMu.Lock()
	s.pendingReset = true
	err := l.persistPendingLocked(nil, true, why)
	s.pendingMu.Unlock()
	return err
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

// isReply reports whether err is an error reply of the server (MISCONF,
// OOM, …): the connection works, the server refused the command.
func isReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
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
			switch {
			case isReply(err):
				// An error reply to the ping (MISCONF refuses PING
				// while it serves reads and pub/sub): the connection
				// answers. Writes that Redis refuses fail on their own.
			case !errors.As(err, &ne) || !ne.Timeout():
				return true, err
			default:
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

// applyMessage applies one published message to the mirror. Messages of
// another epoch are ignored (they were published before this instance
// adopted its epoch); the start of another epoch ends the session.
func (l *l2) applyMessage(p string) error {
	f := strings.Fields(p)
	if len(f) < 2 {
		return fmt.Errorf("bad generation message %q", p)
	}
	epoch := l.keys.Load().epoch
	if f[0] == "e" {
		if f[1] != epoch {
			return fmt.Errorf("%w: epoch %s started", errResync, f[1])
		}
		return nil
	}
	if f[1] != epoch {
		return nil
	}
	switch {
	case f[0] == "b" && len(f)%2 == 0:
		at := l.c.now().UnixNano()
		var top uint64
		for i := 2; i < len(f); i += 2 {
			h, err1 := strconv.ParseUint(f[i], 16, 64)
			g, err2 := strconv.ParseUint(f[i+1], 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("bad generation message %q", p)
			}
			l.c.gens.apply(h, g, at)
			top = max(top, g)
		}
		l.hear(top)
	case f[0] == "f" && len(f) == 3:
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("bad generation message %q", p)
		}
		l.c.gens.applyFloor(v)
		l.hear(v)
	case f[0] == "s" && len(f) == 3:
		// The counter skipped numbers nobody bumped with.
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("bad generation message %q", p)
		}
		l.c.gens.raiseSeq(v)
		l.hear(v)
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
		if isReply(err) {
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
// evict keys without a TTL: the generation keys have none, and losing one
// ends the epoch (every cached entry of every instance is lost).
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

// sharedState is the state of an epoch as a resync reads it.
type sharedState struct {
	epoch        string
	seq, floor   uint64
	tags         map[uint64]uint64
	startedHere  bool // this resync started the epoch
	replacedLost bool // ... in place of one whose state was lost
}

// readState returns the state of the current epoch. It starts a new
// epoch (first value min) if there is none, if its state is incomplete,
// or if it is the epoch of the mirror but older than the mirror (the
// counter went back, or the server restarted: a restored snapshot may
// have lost bumps).
func (l *l2) readState(ctx context.Context, origin *l2Origin, runID string, frozen, min uint64) (sharedState, error) {
	epochKey := l.keysFor("").epochKey
	started, lost := false, false
	for range 4 {
		e, err := l.rdb.Get(ctx, epochKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return sharedState{}, err
		}
		if e != "" {
			k := l.keysFor(e)
			vals, err := readScript.Run(ctx, l.rdb, k.state(), e).Slice()
			switch {
			case err == nil:
				seq, floor, tags, err := parseState(vals)
				if err != nil {
					return sharedState{}, err
				}
				older := origin != nil && origin.epoch == e && (runID == "" || runID != origin.runID || seq < frozen)
				if !older {
					return sharedState{epoch: e, seq: seq, floor: floor, tags: tags, startedHere: started, replacedLost: lost}, nil
				}
			case !isLost(err):
				return sharedState{}, err
			}
		}
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		next := hex.EncodeToString(rnd[:])
		k := l.keysFor(next)
		got, err := createScript.Run(ctx, l.rdb, []string{k.epochKey, k.seq, k.floor, k.tags}, e, l.channel, next, min).Text()
		if err != nil {
			return sharedState{}, fmt.Errorf("start epoch: %w", err)
		}
		if got == next {
			started = true
			lost = lost || e != ""
			if e != "" || origin != nil {
				l.opts.Logger.Warn("result cache: the shared L2 state in Redis was lost (flushed, evicted, deleted, or Redis restarted); started a new epoch: every entry cached before is dropped on every instance", "old_epoch", e, "epoch", next)
			}
		}
	}
	return sharedState{}, errors.New("the shared epoch keeps changing")
}

// resync pushes what was bumped locally to Redis, reads the shared state
// and replaces the mirror by it.
func (l *l2) resync() error {
	s := &l.sync
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(l.ctx, l.resyncTimeout())
	defer cancel()

	runID, err := l.redisRunID(ctx)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	l.checkEvictionPolicy(ctx)
	frozen := s.frozen.Load()
	local := l.c.gens.seq.Load() // above frozen if bumped while unsynced
	origin := s.origin.Load()
	if origin == nil && s.saved != nil && s.saved.prefix == l.opts.Prefix {
		// First sync of a loaded cache: its numbers are from the saved
		// epoch.
		origin = &l2Origin{epoch: s.saved.epoch, runID: s.saved.runID}
	}
	st, err := l.readState(ctx, origin, runID, frozen, max(frozen, local)+1)
	if err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	k := l.keysFor(st.epoch)
	adopt := origin == nil || origin.epoch != st.epoch
	wrote := false
	switch {
	case adopt && !st.startedHere && max(frozen, local) > 0:
		// Snapshots of this instance hold numbers of another epoch (or
		// provisional ones): the floor goes above them.
		if _, err := rebaseScript.Run(ctx, l.rdb, k.state(), k.epoch, l.channel, max(frozen, local), 0).Uint64(); err != nil {
			return fmt.Errorf("resync: adopt epoch: %w", err)
		}
		wrote = true
	case !adopt && local > frozen:
		// No snapshot taken from now on may lie in the hole (frozen,
		// local]: the counter goes past it.
		if err := raiseScript.Run(ctx, l.rdb, k.state(), k.epoch, l.channel, local+1).Err(); err != nil {
			return fmt.Errorf("resync: raise: %w", err)
		}
		wrote = true
	}

	s.pendingMu.Lock()
	pendingReset := s.pendingReset
	pending := make([]string, 0, len(s.pending))
	for h := range s.pending {
		pending = append(pending, tagHex(h))
	}
	s.pendingMu.Unlock()
	if pendingReset {
		if _, err := rebaseScript.Run(ctx, l.rdb, k.state(), k.epoch, l.channel, 0, 1).Uint64(); err != nil {
			return fmt.Errorf("resync: reset: %w", err)
		}
		wrote = true
	}
	for len(pending) > 0 {
		part := pending[:min(len(pending), 512)]
		pending = pending[len(part):]
		args := append([]any{k.epoch, l.channel}, toAny(part)...)
		if err := bumpScript.Run(ctx, l.rdb, k.state(), args...).Err(); err != nil {
			return fmt.Errorf("resync: bump: %w", err)
		}
		wrote = true
	}
	if wrote {
		vals, err := readScript.Run(ctx, l.rdb, k.state(), k.epoch).Slice()
		if err != nil {
			return fmt.Errorf("resync: read: %w", err)
		}
		if st.seq, st.floor, st.tags, err = parseState(vals); err != nil {
			return fmt.Errorf("resync: %w", err)
		}
	}

	s.replacing.Store(true)
	if adopt {
		l.c.fc.Reset()
		l.addHole(0, 0, st.floor) // holes of the old epoch are below the floor
		if st.replacedLost || origin != nil {
			// The bumps of the lost state, and their times, are gone.
			l.refuseAllUntil.Store(l.c.now().UnixNano() + l.partnerLag())
		}
	} else if local > frozen {
		l.addHole(frozen, local, st.floor)
	}
	l.keys.Store(k)
	l.c.gens.replace(st.seq, st.floor, st.tags, l.c.now().UnixNano())
	s.heard.Store(st.seq)
	s.pendingMu.Lock()
	clear(s.pending)
	s.pendingReset = false
	s.pendingUnsaved, s.pendingLogged = false, false // all in Redis now
	l.clearPendingLocked()
	s.pendingMu.Unlock()
	s.origin.Store(&l2Origin{epoch: st.epoch, runID: runID})
	s.lastSeen.Store(st.seq)
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
		if hs == "~" {
			continue // the sentinel
		}
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

// maintainLoop checks the shared state (every 2 s) and prunes the shared
// generations (every minute).
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
		l.checkState()
		if time.Since(lastPrune) >= time.Minute {
			lastPrune = time.Now()
			l.prune()
		}
	}
}

// checkState checks that the shared state is intact, and that the
// subscription delivered every number the counter had reached at the
// previous check; otherwise it resyncs.
func (l *l2) checkState() {
	ctx, cancel := l.opCtx()
	var sr *stateRead
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		sr = l.queueState(ctx, p)
		return nil
	})
	cancel()
	if err != nil && !errors.Is(err, redis.Nil) && !isReply(err) {
		return // the subscription's heartbeat judges the connection
	}
	s := &l.sync
	cur, ok := sr.intact()
	switch {
	case !l.synced():
		return
	case !ok:
		l.markUnsynced(fmt.Errorf("%w: the shared state of epoch %q is gone or incomplete", errResync, sr.k.epoch))
	case s.heard.Load() < s.lastSeen.Load():
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
	k := l.keys.Load()
	err := pruneScript.Run(ctx, l.rdb, []string{k.epochKey, k.seq, k.floor, k.tags, k.ckpt},
		k.epoch, l.channel, now.UnixMilli(), cutoff.UnixMilli(), c.trackedTagLimit()).Err()
	if isLost(err) {
		l.markUnsynced(fmt.Errorf("%w: %v", errResync, err))
	} else if err != nil {
		l.fail("prune", err)
	}
}
