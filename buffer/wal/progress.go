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

// progressFn wraps fn to advance pr by each record's size, up to segEnd
// (records are counted decoded, so this estimates the bytes read), and
// to report every progressEvery bytes.
func progressFn(fn func([]byte) error, pr *Progress, segEnd int64, progress func(Progress)) func([]byte) error {
	next := pr.Bytes + progressEvery
	return func(rec []byte) error {
		pr.Bytes = min(pr.Bytes+int64(len(rec)), segEnd)
		if pr.Bytes >= next {
			next = pr.Bytes + progressEvery
			progress(*pr)
		}
		return fn(rec)
	}
}
