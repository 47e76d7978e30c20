package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/cespare/xxhash/v2"
)

// A saved cache is a directory holding
//
//	generations   the tag generations and the name of the data directory
//	              that goes with them (written last, atomically)
//	data.<n>/     fastcache's files (SaveToFile), fsynced before
//	              generations names them
//	clean         written last by Save, removed (durably) by Load before
//	              the loaded cache is used
//
// The data is only ever loaded together with the generations saved after
// it, so no entry can outlive a bump that invalidated it. A saved state is
// also trusted only once: Load removes the clean marker before it returns,
// so after a crash (no Save since the last Load) the next Load finds no
// marker and starts empty. A process that crashed may have acknowledged
// writes and deletes whose bumps the saved generations do not hold; the
// marker keeps their stale entries from coming back. format.md describes
// the generations file.

const (
	genFileName    = "generations"
	dataDirPrefix  = "data."
	genFileMagic   = "STRCGEN1"
	genFileVersion = 1
	// genFileHeaderLen: magic, version, reserved, seq, floor, written,
	// saveSeq, count.
	genFileHeaderLen = 8 + 4 + 4 + 8*5
	genFileRecordLen = 24
	// cleanFileName marks a saved state written by Save and not loaded
	// since (see Load).
	cleanFileName = "clean"
)

// CorruptionError reports a saved cache state that cannot be read.
type CorruptionError struct {
	Path string
	Err  error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt cache state %s: %v", e.Path, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

// Load returns a cache holding what Save wrote to dir. A dir without a saved
// cache (missing, or never saved to) gives an empty cache, and so does a
// saved cache already loaded once and not saved again since: Load removes
// dir's clean marker, written by Save, before it returns, so only a Save
// at a clean stop makes the state loadable again. If the saved
// generations cannot be read, Load returns a *CorruptionError: the caller
// should log it and start with New (the data cannot be trusted without its
// generations). Data that fastcache cannot load is dropped silently (an
// empty cache, with the saved generations), as is data saved with another
// MaxBytes.
func Load(dir string, o Options) (*Cache, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, genFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newIn(o, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("load cache generations: %w", err)
	}
	st, err := decodeGenFile(b)
	if err != nil {
		return nil, &CorruptionError{Path: path, Err: err}
	}
	// Trusted only after the Save of a clean stop, and only once.
	clean := filepath.Join(dir, cleanFileName)
	if _, err := os.Stat(clean); err != nil {
		return newIn(o, dir)
	}
	if err := os.Remove(clean); err != nil {
		return nil, fmt.Errorf("load cache: %w", err)
	}
	if err := syncPath(dir); err != nil {
		return nil, fmt.Errorf("load cache: %w", err)
	}
	fc := fastcache.LoadFromFileOrNew(filepath.Join(dir, dataDirName(st.saveSeq)), o.MaxBytes)
	c := newCache(o, fc)
	c.gens.restore(st.genState)
	c.written.Store(st.written)
	c.saveSeq = st.saveSeq
	c.PruneGenerations()
	if err := c.startL2(readL2File(filepath.Join(dir, l2FileName)), dir); err != nil {
		return nil, err
	}
	return c, nil
}

// l2FileName names the file that says which Redis the saved generations
// are shared with. It is written after the generations, and only if they
// were in sync with Redis while they were copied; it is removed before
// new generations are written.
const l2FileName = "l2"

const l2FileMagic = "strata-cache-l2 2"

// readL2File returns what the l2 file at path says; nil if it is missing
// or unreadable (the loaded entries will then be dropped at the first
// resync).
func readL2File(path string) *savedL2 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 || lines[0] != l2FileMagic {
		return nil
	}
	prefix, err := strconv.Unquote(lines[1])
	if err != nil || lines[2] == "" || lines[3] == "" {
		return nil
	}
	s := &savedL2{prefix: prefix, epoch: lines[2], runID: lines[3]}
	for _, line := range lines[4:] {
		if line == "" {
			continue
		}
		var h seqHole
		if _, err := fmt.Sscanf(line, "hole %d %d", &h.lo, &h.hi); err != nil || h.lo >= h.hi {
			return nil
		}
		s.holes = append(s.holes, h)
	}
	return s
}

// appendL2File appends the l2 file: a magic line, the quoted prefix, the
// epoch of the shared state, the run_id of the Redis server, then one
// "hole <lo> <hi>" line per hole.
func appendL2File(dst []byte, s *savedL2) []byte {
	dst = append(dst, l2FileMagic+"\n"...)
	dst = strconv.AppendQuote(dst, s.prefix)
	dst = append(dst, "\n"+s.epoch+"\n"+s.runID+"\n"...)
	for _, h := range s.holes {
		dst = fmt.Appendf(dst, "hole %d %d\n", h.lo, h.hi)
	}
	return dst
}

// Save writes the cache and its tag generations to dir, creating it if
// needed, so that Load can restore them. Call it at a clean stop, when
// nothing will be invalidated any more (writes and deletes have stopped):
// it marks the state as clean, and Load trusts a clean state once. It may run concurrently with the
// other methods; Saves, Reset and Close run one after the other. Each
// file is fsynced and the generations file, which names the data, is
// replaced atomically, so a crash during Save leaves the previous save
// loadable.
func (c *Cache) Save(dir string) error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save cache: %w", err)
	}
	// A crash from here on leaves no clean state: the previous save, if it
	// was still marked, predates invalidations made since.
	if err := os.Remove(filepath.Join(dir, cleanFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save cache: %w", err)
	}
	seq := c.saveSeq + 1
	data := filepath.Join(dir, dataDirName(seq))
	if err := c.fc.SaveToFile(data); err != nil {
		return fmt.Errorf("save cache data %s: %w", data, err)
	}
	if err := syncTree(data); err != nil {
		return fmt.Errorf("sync cache data %s: %w", data, err)
	}
	// The generations are taken after the data: every entry saved holds a
	// snapshot at or below the saved sequence, so bumps after a restart
	// get higher numbers than any snapshot they must invalidate.
	l2Path := filepath.Join(dir, l2FileName)
	if err := os.Remove(l2Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save cache: %w", err)
	}
	c.gens.prune(c.pruneCutoff(), 0)
	var phase uint64
	if c.l2 != nil {
		phase = c.l2.sync.phase.Load()
	}
	st := genFile{genState: c.gens.state(), written: c.written.Load(), saveSeq: seq}
	if err := writeFileAtomic(filepath.Join(dir, genFileName), appendGenFile(nil, &st)); err != nil {
		return fmt.Errorf("save cache generations: %w", err)
	}
	if l := c.l2; l != nil && phase&1 == 0 && l.sync.phase.Load() == phase {
		// In sync all along the copy: the saved numbers are shared ones.
		if o := l.sync.origin.Load(); o != nil && o.runID != "" {
			sv := &savedL2{prefix: l.opts.Prefix, epoch: o.epoch, runID: o.runID}
			if hp := l.sync.holes.Load(); hp != nil {
				sv.holes = *hp
			}
			if err := writeFileAtomic(l2Path, appendL2File(nil, sv)); err != nil {
				return fmt.Errorf("save cache: %w", err)
			}
		}
	}
	c.saveSeq = seq
	if err := removeOldData(dir, dataDirName(seq)); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, cleanFileName), nil); err != nil {
		return fmt.Errorf("save cache: %w", err)
	}
	return nil
}

func dataDirName(seq uint64) string { return dataDirPrefix + strconv.FormatUint(seq, 10) }

// removeOldData removes the data directories in dir other than keep.
func removeOldData(dir, keep string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("remove old cache data: %w", err)
	}
	var errs []error
	for _, de := range des {
		if n := de.Name(); strings.HasPrefix(n, dataDirPrefix) && n != keep {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove old cache data: %w", err)
	}
	return nil
}

// syncTree fsyncs the files of directory dir, dir itself and its parent
// (fastcache writes without fsync and renames dir into place).
func syncTree(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if de.Type().IsRegular() {
			if err := syncPath(filepath.Join(dir, de.Name())); err != nil {
				return err
			}
		}
	}
	if err := syncPath(dir); err != nil {
		return err
	}
	return syncPath(filepath.Dir(dir))
}

// fsync flushes f to stable storage. Every fsync of the package goes
// through it, so that tests can see which files are synced, and in what
// order: a missing fsync is otherwise unobservable without a power cut.
var fsync = (*os.File).Sync

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = fsync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces path by b: temporary file, fsync, rename, fsync
// of the directory. The temporary file's name is fixed (path + ".tmp"), so
// two writes of one path must not overlap: its only caller, Save, holds
// adminMu, and a server holds its data directory's lock
// (TestConcurrentSaves).
func writeFileAtomic(path string, b []byte) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err == nil {
		err = fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncPath(filepath.Dir(path))
}

// genFile is the content of the generations file.
type genFile struct {
	genState
	written uint64 // Cache.written, so saved entries' writtenAt stay comparable
	saveSeq uint64 // names the data directory, data.<saveSeq>
}

// appendGenFile appends the encoding of st, little-endian:
//
//	magic "STRCGEN1", version u32, reserved u32,
//	seq u64, floor u64, written u64, saveSeq u64, count u64,
//	count × (tag hash u64, generation u64, bump time unix ns i64),
//	xxhash64 of all the preceding bytes u64.
func appendGenFile(dst []byte, st *genFile) []byte {
	start := len(dst)
	dst = append(dst, genFileMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, genFileVersion)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	for _, u := range []uint64{st.seq, st.floor, st.written, st.saveSeq, uint64(len(st.tags))} {
		dst = binary.LittleEndian.AppendUint64(dst, u)
	}
	for _, r := range st.tags {
		dst = binary.LittleEndian.AppendUint64(dst, r.hash)
		dst = binary.LittleEndian.AppendUint64(dst, r.gen)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(r.at))
	}
	return binary.LittleEndian.AppendUint64(dst, xxhash.Sum64(dst[start:]))
}

// decodeGenFile parses a generations file. It never panics.
func decodeGenFile(b []byte) (genFile, error) {
	var st genFile
	if len(b) < genFileHeaderLen+8 {
		return st, errors.New("file too short")
	}
	body := b[:len(b)-8]
	if xxhash.Sum64(body) != binary.LittleEndian.Uint64(b[len(body):]) {
		return st, errors.New("checksum mismatch")
	}
	if string(body[:8]) != genFileMagic {
		return st, errors.New("bad magic")
	}
	if v := binary.LittleEndian.Uint32(body[8:]); v != genFileVersion {
		return st, fmt.Errorf("unknown version %d", v)
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(body[16+8*i:]) }
	st.seq, st.floor, st.written, st.saveSeq = u(0), u(1), u(2), u(3)
	count := u(4)
	recs := body[genFileHeaderLen:]
	if count != uint64(len(recs))/genFileRecordLen || len(recs)%genFileRecordLen != 0 {
		return genFile{}, fmt.Errorf("%d records in %d bytes", count, len(recs))
	}
	if st.floor > st.seq {
		return genFile{}, fmt.Errorf("floor %d above sequence %d", st.floor, st.seq)
	}
	st.tags = make([]genFileRecord, 0, count)
	for ; len(recs) > 0; recs = recs[genFileRecordLen:] {
		r := genFileRecord{
			hash: binary.LittleEndian.Uint64(recs),
			genRecord: genRecord{
				gen: binary.LittleEndian.Uint64(recs[8:]),
				at:  int64(binary.LittleEndian.Uint64(recs[16:])),
			},
		}
		if r.gen > st.seq {
			return genFile{}, fmt.Errorf("generation %d above sequence %d", r.gen, st.seq)
		}
		st.tags = append(st.tags, r)
	}
	return st, nil
}
