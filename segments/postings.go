package segments

import "errors"

// postings iterates a strictly increasing list of series refs (offsets of
// series entries in the index).
type postings interface {
	// Next advances to the next ref.
	Next() bool
	// Seek advances to the first ref >= v. It does not move when the
	// current ref already is >= v.
	Seek(v uint64) bool
	// At returns the current ref.
	At() uint64
	// Err returns the error that stopped iteration, if any.
	Err() error
}

var errPostingsOrder = errors.New("postings not strictly increasing")

// listPostings decodes a postings list from the index: the first ref and
// then deltas, all uvarints.
type listPostings struct {
	off     uint64 // offset of the list, for errors
	d       decbuf
	n       uint64 // refs left
	cur     uint64
	started bool
	err     error
}

func (p *listPostings) Next() bool {
	if p.err != nil || p.n == 0 {
		return false
	}
	delta := p.d.uvarint()
	switch {
	case p.d.err != nil:
		p.err = indexErr(p.off, "decode postings: %w", p.d.err)
	case p.started && (delta == 0 || p.cur+delta < p.cur):
		p.err = indexErr(p.off, "decode postings: %w", errPostingsOrder)
	}
	if p.err != nil {
		return false
	}
	p.cur += delta
	p.n--
	p.started = true
	return true
}

func (p *listPostings) Seek(v uint64) bool {
	if p.started && p.cur >= v {
		return true
	}
	for p.Next() {
		if p.cur >= v {
			return true
		}
	}
	return false
}

func (p *listPostings) At() uint64 { return p.cur }
func (p *listPostings) Err() error { return p.err }

// errPostings is an empty list that reports err.
type errPostings struct{ err error }

func (errPostings) Next() bool       { return false }
func (errPostings) Seek(uint64) bool { return false }
func (errPostings) At() uint64       { return 0 }
func (e errPostings) Err() error     { return e.err }

var emptyPostings postings = errPostings{}

// intersect returns the refs present in every one of its.
func intersect(its ...postings) postings {
	switch len(its) {
	case 0:
		return emptyPostings
	case 1:
		return its[0]
	}
	return &intersectPostings{its: its}
}

type intersectPostings struct {
	its []postings
	cur uint64
}

func (p *intersectPostings) At() uint64 { return p.cur }

func (p *intersectPostings) Next() bool {
	if !p.its[0].Next() {
		return false
	}
	return p.align(p.its[0].At())
}

func (p *intersectPostings) Seek(v uint64) bool {
	return p.align(v)
}

// align moves every iterator to the smallest common ref >= target.
func (p *intersectPostings) align(target uint64) bool {
	for {
		agreed := true
		for _, it := range p.its {
			if !it.Seek(target) {
				return false
			}
			if at := it.At(); at > target {
				target = at
				agreed = false
			}
		}
		if agreed {
			p.cur = target
			return true
		}
	}
}

func (p *intersectPostings) Err() error {
	for _, it := range p.its {
		if err := it.Err(); err != nil {
			return err
		}
	}
	return nil
}

// merge returns the union of its.
func merge(its ...postings) postings {
	switch len(its) {
	case 0:
		return emptyPostings
	case 1:
		return its[0]
	}
	return &mergePostings{pending: its}
}

// mergePostings is a k-way union over a min-heap ordered by At.
type mergePostings struct {
	pending []postings // not yet started
	h       []postings
	cur     uint64
	started bool
	err     error
}

func (p *mergePostings) At() uint64 { return p.cur }
func (p *mergePostings) Err() error { return p.err }

// start positions every pending iterator with advance and builds the heap.
func (p *mergePostings) start(advance func(postings) bool) {
	for _, it := range p.pending {
		if advance(it) {
			p.h = append(p.h, it)
		} else if err := it.Err(); err != nil {
			p.err = err
		}
	}
	p.pending = nil
	for i := len(p.h)/2 - 1; i >= 0; i-- {
		p.down(i)
	}
}

func (p *mergePostings) Next() bool {
	if p.err != nil {
		return false
	}
	if !p.started {
		p.started = true
		p.start(func(it postings) bool { return it.Next() })
	} else {
		for len(p.h) > 0 && p.h[0].At() == p.cur {
			p.advanceTop(p.h[0].Next())
		}
	}
	return p.settle()
}

func (p *mergePostings) Seek(v uint64) bool {
	if p.err != nil {
		return false
	}
	if p.started && p.cur >= v {
		return len(p.h) > 0
	}
	if !p.started {
		p.started = true
		p.start(func(it postings) bool { return it.Seek(v) })
	} else {
		for len(p.h) > 0 && p.h[0].At() < v {
			p.advanceTop(p.h[0].Seek(v))
		}
	}
	return p.settle()
}

// advanceTop restores the heap after the top iterator moved (ok) or ended.
func (p *mergePostings) advanceTop(ok bool) {
	if ok {
		p.down(0)
		return
	}
	if err := p.h[0].Err(); err != nil {
		p.err = err
	}
	last := len(p.h) - 1
	p.h[0] = p.h[last]
	p.h = p.h[:last]
	if last > 0 {
		p.down(0)
	}
}

func (p *mergePostings) settle() bool {
	if p.err != nil || len(p.h) == 0 {
		p.h = nil
		return false
	}
	p.cur = p.h[0].At()
	return true
}

func (p *mergePostings) down(i int) {
	n := len(p.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && p.h[r].At() < p.h[l].At() {
			m = r
		}
		if p.h[i].At() <= p.h[m].At() {
			return
		}
		p.h[i], p.h[m] = p.h[m], p.h[i]
		i = m
	}
}

// without returns the refs of full that are not in drop.
func without(full, drop postings) postings {
	return &withoutPostings{full: full, drop: drop}
}

type withoutPostings struct {
	full, drop postings
	dropDone   bool
}

func (p *withoutPostings) At() uint64 { return p.full.At() }

func (p *withoutPostings) Err() error {
	if err := p.full.Err(); err != nil {
		return err
	}
	return p.drop.Err()
}

// keep reports whether the current ref of full survives.
func (p *withoutPostings) keep() bool {
	if p.dropDone {
		return true
	}
	v := p.full.At()
	if !p.drop.Seek(v) {
		p.dropDone = true
		return true
	}
	return p.drop.At() != v
}

func (p *withoutPostings) Next() bool {
	for p.full.Next() {
		keep := p.keep()
		if p.drop.Err() != nil {
			return false
		}
		if keep {
			return true
		}
	}
	return false
}

func (p *withoutPostings) Seek(v uint64) bool {
	if !p.full.Seek(v) {
		return false
	}
	keep := p.keep()
	if p.drop.Err() != nil {
		return false
	}
	if keep {
		return true
	}
	return p.Next()
}
