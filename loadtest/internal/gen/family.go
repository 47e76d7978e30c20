package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Kind says how a field behaves over time.
type Kind uint8

const (
	// Gauge values go up and down.
	Gauge Kind = iota
	// Counter values only grow, except when the host reboots and they
	// restart from zero.
	Counter
	// NativeHistogram values are native histograms (Batch.Hists) of counts that
	// only grow, except when the host reboots; Batch.Values holds their
	// count. Only remote write carries them.
	NativeHistogram
)

func (k Kind) String() string {
	switch k {
	case Counter:
		return "counter"
	case NativeHistogram:
		return "histogram"
	}
	return "gauge"
}

// Field is one value of a family: one series per host (and instance).
type Field struct {
	Name string
	Kind Kind
	// Integer means every value is a whole number; line protocol writes
	// it as an integer field.
	Integer bool
}

// Family is a group of fields scraped together, like a Telegraf input: in
// line protocol one line per host (and instance) carries all its fields,
// and field f becomes the series <Name>_<f>.
type Family struct {
	// Name is the measurement.
	Name   string
	Fields []Field
	// InstanceLabel names the label telling instances apart ("device",
	// "interface"); empty when a host has one instance of the family.
	InstanceLabel string
	Instances     []string

	stateLen int
	init     func(r *rand.Rand, st []float64)
	// step advances the state by dt seconds and writes one value per
	// field into out; reset means the host rebooted just before.
	step func(r *rand.Rand, st []float64, dt float64, reset, integer bool, out []float64)
	// histStep replaces step in a family of one NativeHistogram field.
	histStep func(r *rand.Rand, st []float64, dt float64, reset bool, out *Histogram)
}

// HasHistograms reports whether the family's fields are native histograms.
func (f *Family) HasHistograms() bool { return f.histStep != nil }

// SeriesName is the metric name of field f.
func (f *Family) SeriesName(field int) string { return f.Name + "_" + f.Fields[field].Name }

// FamilyNames lists the families known to New, in their order.
func FamilyNames() []string {
	names := make([]string, len(families))
	for i, f := range families {
		names[i] = f.Name
	}
	return names
}

// DefaultFamilyNames lists the families of floats, which every protocol
// carries: those New uses when given none.
func DefaultFamilyNames() []string {
	var names []string
	for _, f := range families {
		if !f.HasHistograms() {
			names = append(names, f.Name)
		}
	}
	return names
}

// LookupFamily returns the family called name.
func LookupFamily(name string) (*Family, error) {
	for _, f := range families {
		if f.Name == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("unknown metric family %q (known: %s)", name, strings.Join(FamilyNames(), ", "))
}

var families = []*Family{cpuFamily, memFamily, diskioFamily, netFamily, httpFamily}

// ou is one step of a discrete Ornstein-Uhlenbeck walk: it pulls x towards
// mu by theta and adds Gaussian noise of scale sigma.
func ou(r *rand.Rand, x, mu, theta, sigma float64) float64 {
	return x + theta*(mu-x) + sigma*r.NormFloat64()
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// cpu: ten percentages (Telegraf's cpu input), idle is what the others
// leave of 100.
var cpuFamily = &Family{
	Name: "cpu",
	Fields: []Field{
		{Name: "usage_user"}, {Name: "usage_system"}, {Name: "usage_idle"}, {Name: "usage_nice"},
		{Name: "usage_iowait"}, {Name: "usage_irq"}, {Name: "usage_softirq"}, {Name: "usage_steal"},
		{Name: "usage_guest"}, {Name: "usage_guest_nice"},
	},
	// state: 0 load level, then the nine busy fields in output order
	// without idle: user, system, nice, iowait, irq, softirq, steal,
	// guest, guest_nice.
	stateLen: 10,
	init: func(r *rand.Rand, st []float64) {
		load := 3 + r.Float64()*45
		st[0] = load
		copy(st[1:], []float64{load, load * 0.3, r.Float64(), 1 + 3*r.Float64(), 0.1 * r.Float64(), 0.5 * r.Float64(), 0.3 * r.Float64(), 0, 0})
	},
	step: func(r *rand.Rand, st []float64, dt float64, reset, integer bool, out []float64) {
		load := clamp(st[0]+0.3*r.NormFloat64(), 1, 85)
		st[0] = load
		// mean, pull and noise of each busy field
		params := [9][3]float64{
			{load, 0.05, 2}, {load * 0.3, 0.05, 0.8}, {0.3, 0.05, 0.1}, {1.5, 0.1, 0.5},
			{0.05, 0.2, 0.02}, {0.4, 0.1, 0.1}, {0.2, 0.05, 0.1}, {0, 0.2, 0.05}, {0, 0.2, 0.02},
		}
		busy := 0.0
		for i, p := range params {
			v := math.Max(0, ou(r, st[1+i], p[0], p[1], p[2]))
			st[1+i] = v
			busy += v
		}
		scale := 1.0
		if busy > 100 {
			scale = 100 / busy
		}
		var used float64
		for i := range params {
			v := st[1+i] * scale
			if integer {
				v = math.Round(v)
			}
			used += v
			out[cpuBusyOut[i]] = v
		}
		out[2] = math.Max(0, 100-used)
	},
}

// cpuBusyOut maps the busy fields of the cpu state to their output
// index; usage_idle (index 2) is computed.
var cpuBusyOut = [9]int{0, 1, 3, 4, 5, 6, 7, 8, 9}

const (
	kib = 1024.0
	gib = 1024 * 1024 * 1024.0
)

// mem: Telegraf's mem input; byte gauges in whole pages.
var memFamily = &Family{
	Name: "mem",
	Fields: []Field{
		{Name: "total", Integer: true}, {Name: "available", Integer: true}, {Name: "used", Integer: true},
		{Name: "free", Integer: true}, {Name: "cached", Integer: true}, {Name: "buffered", Integer: true},
		{Name: "used_percent"},
	},
	// state: total, used fraction, its mean, cached fraction, buffered fraction
	stateLen: 5,
	init: func(r *rand.Rand, st []float64) {
		st[0] = []float64{4, 8, 16, 32, 64, 128}[r.IntN(6)] * gib
		st[2] = 0.2 + 0.6*r.Float64()
		st[1], st[3], st[4] = st[2], 0.15, 0.03
	},
	step: func(r *rand.Rand, st []float64, dt float64, reset, integer bool, out []float64) {
		if reset {
			st[1], st[3] = st[2]*0.6, 0.02
		}
		st[1] = clamp(ou(r, st[1], st[2], 0.02, 0.004), 0.05, 0.95)
		st[3] = clamp(ou(r, st[3], 0.15, 0.01, 0.002), 0.005, 0.9-st[1])
		st[4] = clamp(ou(r, st[4], 0.03, 0.05, 0.001), 0.001, 0.05)
		total := st[0]
		page := func(frac float64) float64 { return math.Round(frac*total/(4*kib)) * 4 * kib }
		used, cached, buffered := page(st[1]), page(st[3]), page(st[4])
		free := math.Max(0, total-used-cached-buffered)
		out[0], out[1], out[2], out[3], out[4], out[5] = total, free+cached+buffered, used, free, cached, buffered
		out[6] = 100 * used / total
	},
}

// counterFamily builds a family of byte and operation counters driven by a
// log-normal walk of the throughput in two directions (in, out): for each
// direction a byte counter and an operation counter, ops = bytes / a
// typical size. fields names the outputs; from[i] says which counter
// output i is: 0 bytes in, 1 ops in, 2 bytes out, 3 ops out.
func counterFamily(name, instLabel string, insts []string, fields [4]string, from [4]int, meanRate, opSize float64) *Family {
	return &Family{
		Name:          name,
		Fields:        []Field{{fields[0], Counter, true}, {fields[1], Counter, true}, {fields[2], Counter, true}, {fields[3], Counter, true}},
		InstanceLabel: instLabel,
		Instances:     insts,
		// state: log rate and its mean for each direction, then the four
		// counters (bytes in, ops in, bytes out, ops out)
		stateLen: 8,
		init: func(r *rand.Rand, st []float64) {
			for d := range 2 {
				mu := math.Log(meanRate) + r.NormFloat64()
				st[2*d], st[2*d+1] = mu, mu
			}
			uptime := r.Float64() * 30 * 86400 // seconds since the last reboot
			for d := range 2 {
				b := math.Round(math.Exp(st[2*d]) * uptime)
				st[4+2*d], st[5+2*d] = b, math.Round(b/opSize)
			}
		},
		step: func(r *rand.Rand, st []float64, dt float64, reset, integer bool, out []float64) {
			if reset {
				clear(st[4:8])
			}
			for d := range 2 {
				st[2*d] = ou(r, st[2*d], st[2*d+1], 0.05, 0.25)
				bytes := math.Round(math.Exp(st[2*d]) * dt * (0.5 + r.Float64()))
				st[4+2*d] += bytes
				st[5+2*d] += math.Round(bytes / (opSize * (0.7 + 0.6*r.Float64())))
			}
			for i, c := range from {
				out[i] = st[4+c]
			}
		},
	}
}

// diskio: Telegraf's diskio input, per device.
var diskioFamily = counterFamily("diskio", "device", []string{"sda", "sdb"},
	[4]string{"reads", "writes", "read_bytes", "write_bytes"}, [4]int{1, 3, 0, 2}, 2e6, 16*kib)

// net: Telegraf's net input, per interface.
var netFamily = counterFamily("net", "interface", []string{"eth0", "eth1"},
	[4]string{"bytes_recv", "packets_recv", "bytes_sent", "packets_sent"}, [4]int{0, 1, 2, 3}, 5e5, 800)
