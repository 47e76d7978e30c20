package wire

import (
	"strconv"
	"strings"

	"github.com/strata-tsdb/strata/loadtest/internal/gen"
)

// lpEncoder writes one line per group and timestamp, carrying all the
// group's fields: `cpu,host=h,region=r usage_user=1.5,usage_system=2 1700000000000`.
// Integer fields get the `i` suffix. Timestamps are in milliseconds.
type lpEncoder struct {
	prefixes map[*gen.Group][]byte    // measurement and tags, then a space
	fields   map[*gen.Family][][]byte // "name=" per field, with the comma before all but the first
	body     []byte
}

func newLPEncoder() *lpEncoder {
	return &lpEncoder{prefixes: map[*gen.Group][]byte{}, fields: map[*gen.Family][][]byte{}}
}

func (e *lpEncoder) Endpoint() Endpoint {
	return Endpoint{Path: "/write?precision=ms", Header: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
}

func (e *lpEncoder) Encode(b *gen.Batch) []byte {
	body := e.body[:0]
	n := len(b.Times)
	for i, gr := range b.Groups {
		prefix := e.prefix(gr)
		keys := e.fieldKeys(gr.Family)
		off := b.Offsets[i]
		for t, ts := range b.Times {
			body = append(body, prefix...)
			for f, fld := range gr.Family.Fields {
				body = append(body, keys[f]...)
				v := b.Values[off+f*n+t]
				if fld.Integer {
					body = strconv.AppendInt(body, int64(v), 10)
					body = append(body, 'i')
				} else {
					body = strconv.AppendFloat(body, v, 'g', -1, 64)
				}
			}
			body = append(body, ' ')
			body = strconv.AppendInt(body, ts, 10)
			body = append(body, '\n')
		}
	}
	e.body = body
	return body
}

var (
	measurementEscaper = strings.NewReplacer(",", `\,`, " ", `\ `)
	keyEscaper         = strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `)
)

func (e *lpEncoder) prefix(gr *gen.Group) []byte {
	if p, ok := e.prefixes[gr]; ok {
		return p
	}
	p := []byte(measurementEscaper.Replace(gr.Family.Name))
	for _, l := range gr.Labels() {
		p = append(p, ',')
		p = append(p, keyEscaper.Replace(l.Name)...)
		p = append(p, '=')
		p = append(p, keyEscaper.Replace(l.Value)...)
	}
	p = append(p, ' ')
	e.prefixes[gr] = p
	return p
}

func (e *lpEncoder) fieldKeys(f *gen.Family) [][]byte {
	if k, ok := e.fields[f]; ok {
		return k
	}
	k := make([][]byte, len(f.Fields))
	for i, fld := range f.Fields {
		if i > 0 {
			k[i] = append(k[i], ',')
		}
		k[i] = append(k[i], keyEscaper.Replace(fld.Name)...)
		k[i] = append(k[i], '=')
	}
	e.fields[f] = k
	return k
}
