package buffer

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// seriesLabels is a series' label set as the head keeps it: the label
// set's strings (name, value, name, ...) in labels.Labels order, each
// preceded by its length as the default build of labels.Labels encodes
// them (one byte for 0-254, else 255 and 3 bytes little-endian), with
// runs of that encoding replaced by references to the head's
// symbolTable. It is a sequence of items, each a uvarint x followed by
// nothing when x is odd (a reference, x>>1, to a fragment in the table)
// or by x>>1 bytes of the encoding itself when x is even.
//
// A label whose name has few values is one reference to its whole
// encoded pair; a label of a name with many values (pod, instance) is a
// reference to its name and its value inline. A Kubernetes-like series
// of 10 labels takes about 30 bytes here, where a labels.Labels holding
// every string takes about 200; comparing it with a request's labels
// (equal) compares one fragment per label, and making a labels.Labels of
// it (the default build) copies fragments. A seriesLabels is immutable,
// so the head reads it without locks.
type seriesLabels string

// Interning limits. A fragment costs about 80 bytes (its string, a page
// slot, a map entry) whatever the number of series that carry it, a value
// kept in the series costs its length in each. The labels of a name are
// interned until it has maxInternedValues of them (then its new values
// are kept in the series: those of names like pod or instance, which few
// series share), and no more than maxSymbols fragments are made: the
// table costs at most about 10 MB, and never shrinks while the head
// lives.
const (
	maxInternedValues = 4096
	maxSymbols        = 1 << 17
	symPageBits       = 10
	symPageSize       = 1 << symPageBits
)

// symbolTable interns the fragments of the head's label sets. Fragments
// are only added: a reference stays valid as long as the table.
type symbolTable struct {
	pages atomic.Pointer[[]*[symPageSize]string] // the fragments, by reference

	mtx   sync.Mutex           // mtx guards everything below, and adding to pages.
	ids   map[string]uint32    // the reference of each fragment
	names map[string]*nameSyms // the label names that have a fragment
	// byPos is, for each place in a label set, the name found there
	// last: label sets mostly have the same names in the same places, and
	// comparing a short string costs less than looking it up.
	byPos []*nameSyms
	buf   []byte // encoding buffers
	pair  []byte
}

// nameSyms is a label name that has a fragment (its encoding alone).
type nameSyms struct {
	name   string
	ref    uint32
	values int32 // how many of its labels were interned
	// last is the fragment of the label of this name encoded last, and
	// lastRef its reference: "" while none.
	last    string
	lastRef uint32
}

func newSymbolTable() *symbolTable {
	t := &symbolTable{ids: map[string]uint32{}, names: map[string]*nameSyms{}}
	t.pages.Store(&[]*[symPageSize]string{})
	return t
}

// lenLocked returns the number of fragments.
func (t *symbolTable) lenLocked() int { return len(t.ids) }

// internLocked returns the reference of the fragment frag, adding it
// when add is true and the table has room (added); ok is false when frag
// has no reference. frag may alias a buffer: the table keeps a copy.
func (t *symbolTable) internLocked(frag []byte, add bool) (ref uint32, ok, added bool) {
	if ref, ok := t.ids[string(frag)]; ok {
		return ref, true, false
	}
	n := t.lenLocked()
	if !add || n >= maxSymbols {
		return 0, false, false
	}
	pages := *t.pages.Load()
	if n>>symPageBits == len(pages) {
		// Readers hold the old directory; the pages are shared.
		grown := append(pages[:len(pages):len(pages)], new([symPageSize]string))
		t.pages.Store(&grown)
		pages = grown
	}
	s := string(frag) // a copy, not a piece of a request
	pages[n>>symPageBits][n&(symPageSize-1)] = s
	t.ids[s] = uint32(n)
	return uint32(n), true, true
}

// fragment returns the fragment of ref. A reference read from a
// seriesLabels is safe to look up without locks: the fragment was written
// before the label set that names it was made.
func (t *symbolTable) fragment(ref uint32) string {
	return (*t.pages.Load())[ref>>symPageBits][ref&(symPageSize-1)]
}

// encode returns lset as the head keeps it, interning what the limits
// allow.
func (t *symbolTable) encode(lset labels.Labels) seriesLabels {
	t.mtx.Lock()
	defer t.mtx.Unlock()
	b := t.buf[:0]
	pos := 0
	lset.Range(func(l labels.Label) {
		name := t.nameLocked(pos, l.Name)
		pos++
		if name == nil {
			t.pair = appendString(appendString(t.pair[:0], l.Name), l.Value)
			b = appendInline(b, t.pair)
			return
		}
		t.pair = appendString(appendString(t.pair[:0], l.Name), l.Value)
		if name.last != "" && string(t.pair) == name.last {
			// The label of the series before, mostly (a target's series
			// come together).
			b = binary.AppendUvarint(b, uint64(name.lastRef)<<1|1)
			return
		}
		// A name with its share of interned labels (pod, instance) has
		// few repeated ones: no lookup, its new labels are kept inline.
		ref, ok, added := uint32(0), false, false
		if name.values < maxInternedValues {
			ref, ok, added = t.internLocked(t.pair, true)
		}
		if !ok {
			b = binary.AppendUvarint(b, uint64(name.ref)<<1|1)
			b = appendInline(b, t.pair[len(t.pair)-encodedLen(l.Value):])
			return
		}
		if added {
			name.values++
		}
		name.last, name.lastRef = t.fragment(ref), ref
		b = binary.AppendUvarint(b, uint64(ref)<<1|1)
	})
	t.buf = b
	return seriesLabels(b) // a copy: b is reused
}

// nameLocked returns the symbol of the label name found at place pos of
// a label set, nil when the table is full.
func (t *symbolTable) nameLocked(pos int, name string) *nameSyms {
	if pos < len(t.byPos) && t.byPos[pos].name == name {
		return t.byPos[pos]
	}
	ns := t.names[name]
	if ns == nil {
		t.pair = appendString(t.pair[:0], name)
		ref, ok, _ := t.internLocked(t.pair, true)
		if !ok {
			return nil
		}
		name = strings.Clone(name)
		ns = &nameSyms{name: name, ref: ref}
		t.names[name] = ns
	}
	if pos < len(t.byPos) {
		t.byPos[pos] = ns
	} else if pos == len(t.byPos) {
		t.byPos = append(t.byPos, ns)
	}
	return ns
}

// appendString appends s with its length, as labels.Labels encodes it.
func appendString(b []byte, s string) []byte {
	if n := len(s); n < 255 {
		b = append(b, byte(n))
	} else {
		b = append(b, 255, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(b, s...)
}

// encodedLen is the length of s encoded by appendString.
func encodedLen(s string) int {
	if len(s) < 255 {
		return 1 + len(s)
	}
	return 4 + len(s)
}

// appendInline appends an item of s's encoding e kept in the series.
func appendInline(b, e []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(e))<<1)
	return append(b, e...)
}

// item decodes the item at i of s: the encoding it stands for (a fragment
// of the table or a piece of s) and the position after it.
func item(pages []*[symPageSize]string, s seriesLabels, i int) (string, int) {
	x := uint64(s[i]) // out of range: corrupt, and only encode writes them
	i++
	if x >= 0x80 {
		if s[i] < 0x80 { // two bytes: references below 8,192
			x = x&0x7f | uint64(s[i])<<7
			i++
		} else {
			x, i = uvarintRest(s, i, x)
		}
	}
	if x&1 == 1 {
		ref := x >> 1
		return pages[ref>>symPageBits][ref&(symPageSize-1)], i
	}
	n := int(x >> 1)
	return string(s[i : i+n]), i + n
}

// uvarintRest decodes the bytes after the first, x, of a uvarint of more
// than one byte.
func uvarintRest(s seriesLabels, i int, x uint64) (uint64, int) {
	x &= 0x7f
	for shift := 7; ; shift += 7 {
		c := s[i]
		i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, i
		}
	}
}

// stringAt decodes the string at k of an encoding e and returns it and
// the position after it.
func stringAt(e string, k int) (string, int) {
	n := int(e[k])
	k++
	if n == 255 {
		n = int(e[k]) | int(e[k+1])<<8 | int(e[k+2])<<16
		k += 3
	}
	return e[k : k+n], k + n
}

// labelIter reads the strings of a seriesLabels in turn.
type labelIter struct {
	pages []*[symPageSize]string
	s     seriesLabels
	i     int    // the next item of s
	e     string // the encoding of the current item
	k     int    // the next string of e
}

func (t *symbolTable) iter(s seriesLabels) labelIter {
	return labelIter{pages: *t.pages.Load(), s: s}
}

// next returns the next string, false after the last one.
func (it *labelIter) next() (string, bool) {
	for it.k >= len(it.e) {
		if it.i >= len(it.s) {
			return "", false
		}
		it.e, it.i = item(it.pages, it.s, it.i)
		it.k = 0
	}
	var x string
	x, it.k = stringAt(it.e, it.k)
	return x, true
}

// rangeLabels calls f for each label of s, in order. The strings are
// pieces of the table's fragments or of s: f may keep them.
func (t *symbolTable) rangeLabels(s seriesLabels, f func(name, value string)) {
	pages := *t.pages.Load()
	var (
		name  string
		named bool // name is read, its value not yet
	)
	for i := 0; i < len(s); {
		var e string
		e, i = item(pages, s, i)
		for k := 0; k < len(e); {
			var x string
			x, k = stringAt(e, k)
			if named {
				f(name, x)
			} else {
				name = x
			}
			named = !named
		}
	}
}

// appendData appends the encoding of s's label set: in the default
// build, what a labels.Labels of it holds (labelsData).
func (t *symbolTable) appendData(b []byte, s seriesLabels) []byte {
	pages := *t.pages.Load()
	for i := 0; i < len(s); {
		var e string
		e, i = item(pages, s, i)
		b = append(b, e...)
	}
	return b
}

// labels returns s as a labels.Labels, a new one (sb is used in the
// builds where a labels.Labels is not its encoding).
func (t *symbolTable) labels(s seriesLabels, sb *labels.ScratchBuilder) labels.Labels {
	if labelsAreData {
		return labelsFromData(string(t.appendData(make([]byte, 0, t.dataLen(s)), s)))
	}
	sb.Reset()
	t.rangeLabels(s, sb.Add)
	return sb.Labels()
}

// dataLen returns the length of s's encoding.
func (t *symbolTable) dataLen(s seriesLabels) int {
	pages := *t.pages.Load()
	n := 0
	for i := 0; i < len(s); {
		var e string
		e, i = item(pages, s, i)
		n += len(e)
	}
	return n
}

// overwrite returns s as a labels.Labels in memory of buf or sb, valid
// until the next call with them: for a use that keeps nothing (a hash, a
// record encoded at once).
func (t *symbolTable) overwrite(s seriesLabels, buf *[]byte, sb *labels.ScratchBuilder) labels.Labels {
	if labelsAreData {
		*buf = t.appendData((*buf)[:0], s)
		return labelsFromData(yoloString(*buf))
	}
	sb.Reset()
	t.rangeLabels(s, sb.Add)
	var ls labels.Labels
	sb.Overwrite(&ls)
	return ls
}

// get returns the value of the label name in s, "" when s has none.
func (t *symbolTable) get(s seriesLabels, name string) string {
	it := t.iter(s)
	for {
		n, ok := it.next()
		if !ok {
			return ""
		}
		v, _ := it.next()
		if n == name {
			return v
		}
	}
}

// equal reports whether s holds the labels of lset. Every lookup of a
// series by its labels asks it (the series found by the hash of lset), so
// in the default build it compares lset's encoding with s's fragments,
// one comparison per label.
func (t *symbolTable) equal(s seriesLabels, lset labels.Labels) bool {
	if labelsAreData {
		return t.equalData(s, labelsData(lset))
	}
	it, eq := t.iter(s), true
	lset.Range(func(l labels.Label) {
		if !eq {
			return
		}
		n, ok := it.next()
		v, _ := it.next()
		eq = ok && n == l.Name && v == l.Value
	})
	_, more := it.next()
	return eq && !more
}

// equalData is equal on the encoding d of a label set (labelsData).
func (t *symbolTable) equalData(s seriesLabels, d string) bool {
	pages := *t.pages.Load()
	i, j := 0, 0
	for i < len(s) {
		var e string
		e, i = item(pages, s, i)
		if len(d)-j < len(e) || d[j:j+len(e)] != e {
			return false
		}
		j += len(e)
	}
	return j == len(d)
}

// compare orders label sets as labels.Compare orders them: by their
// strings in turn (name, value, name, ...), a set that is a prefix of the
// other first.
func (t *symbolTable) compare(a, b seriesLabels) int {
	// Items the two have alike at their start stand for the same
	// strings: start after them (series sorted together share most).
	i := commonItems(a, b)
	x, y := t.iter(a[i:]), t.iter(b[i:])
	for {
		sa, oka := x.next()
		sb, okb := y.next()
		switch {
		case !oka && !okb:
			return 0
		case !oka:
			return -1
		case !okb:
			return 1
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
	}
}

// commonItems returns the length of the items a and b start with alike
// (the same bytes).
func commonItems(a, b seriesLabels) int {
	n := min(len(a), len(b))
	p := 0
	for p < n && a[p] == b[p] {
		p++
	}
	// Back to the start of the item that holds the first difference.
	start := 0
	for i := 0; i < p; {
		start = i
		x := uint64(a[i])
		i++
		if x >= 0x80 {
			x, i = uvarintRest(a, i, x)
		}
		if x&1 == 0 {
			i += int(x >> 1)
		}
		if i <= p {
			start = i
		}
	}
	return start
}

// yoloString returns a string sharing b's memory, valid while b is not
// written.
func yoloString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
