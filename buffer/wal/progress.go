package wal

import "os"

// progressOf sizes the segments a replay from from will read.
func progressOf(segs []segmentRef, from int) Progress {
	p := Progress{First: -1, Last: -1, Current: -1}
	for _, s := range segs {
		if s.index < from {
			continue
		}
		if p.First < 0 {
			p.First = s.index
		}
		p.Last = s.index
		p.TotalBytes += segmentSize(s)
	}
	return p
}

func segmentSize(s segmentRef) int64 {
	st, err := os.Stat(s.path)
	if err != nil {
		return 0 // replay reports the error
	}
	return st.Size()
}

// progressAt returns the offset callback of a segment that starts at byte
// segStart of the replay: it sets pr.Bytes from the file offset reached and
// reports every progressEvery bytes.
func progressAt(pr *Progress, segStart int64, progress func(Progress)) func(off int64) {
	next := segStart + progressEvery
	return func(off int64) {
		pr.Bytes = segStart + off
		if pr.Bytes >= next {
			next = pr.Bytes + progressEvery
			progress(*pr)
		}
	}
}
