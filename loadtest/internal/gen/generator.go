package gen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Options configures a Generator.
type Options struct {
	// Hosts is the number of hosts; it must be positive.
	Hosts int
	// Families names the metric families every host reports (see
	// FamilyNames); empty means DefaultFamilyNames.
	Families []string
	// Seed makes the data set reproducible: the same seed gives the same
	// hosts, labels and values.
	Seed uint64
	// IntegerGauges rounds the CPU percentages to whole numbers, as some
	// agents report them.
	IntegerGauges bool
	// ResetProbability is the chance, per host and step, that the host
	// reboots just before the step, restarting its counters from zero.
	// Zero means never; it must be below 1.
	ResetProbability float64
}

// DefaultOptions returns a fleet of 100 hosts with every family, seed 1
// and a reboot about every 10,000 steps (28 h at a 10 s interval).
func DefaultOptions() Options {
	return Options{Hosts: 100, Seed: 1, ResetProbability: 1e-4}
}

// Validate reports the first option out of range.
func (o Options) Validate() error {
	if o.Hosts <= 0 {
		return errors.New("hosts must be positive")
	}
	if o.ResetProbability < 0 || o.ResetProbability >= 1 {
		return fmt.Errorf("reset probability %g: must be in [0, 1)", o.ResetProbability)
	}
	for _, f := range o.Families {
		if _, err := LookupFamily(f); err != nil {
			return err
		}
	}
	return nil
}

// Label is one label pair.
type Label struct{ Name, Value string }

// Group is one family on one host (and one instance: a disk, an
// interface): one line of line protocol per step, one series per field.
type Group struct {
	Host     *Host
	HostIdx  int
	Family   *Family
	Instance string // "" when the family has no instances

	labels []Label // sorted, without __name__
	rng    *rand.Rand
	state  []float64
}

// Labels returns the group's labels without the metric name, sorted by
// name. The slice is shared: do not modify it.
func (g *Group) Labels() []Label { return g.labels }

// SeriesLabels returns the full, sorted label set of field f's series,
// __name__ first.
func (g *Group) SeriesLabels(f int) []Label {
	return append([]Label{{"__name__", g.Family.SeriesName(f)}}, g.labels...)
}

// Generator holds a fleet and the state of its random walks.
type Generator struct {
	opts   Options
	hosts  []Host
	fams   []*Family
	groups []*Group
	series int
}

// New builds the fleet described by o.
func New(o Options) (*Generator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{opts: o, hosts: Hosts(o.Hosts, o.Seed)}
	names := o.Families
	if len(names) == 0 {
		names = DefaultFamilyNames()
	}
	for _, n := range names {
		f, _ := LookupFamily(n)
		if !slices.Contains(g.fams, f) {
			g.fams = append(g.fams, f)
		}
	}
	for hi := range g.hosts {
		h := &g.hosts[hi]
		for _, f := range g.fams {
			fi := slices.Index(families, f)
			insts := f.Instances
			if len(insts) == 0 {
				insts = []string{""}
			}
			for ii, inst := range insts {
				gr := &Group{Host: h, HostIdx: hi, Family: f, Instance: inst, state: make([]float64, f.stateLen)}
				// The stream of a group depends on its host, family and
				// instance only, not on which other families are chosen.
				gr.rng = rand.New(rand.NewPCG(o.Seed, uint64(hi)<<16|uint64(fi)<<8|uint64(ii)))
				f.init(gr.rng, gr.state)
				vals := h.Labels()
				for i, n := range HostLabelNames {
					gr.labels = append(gr.labels, Label{n, vals[i]})
				}
				if inst != "" {
					gr.labels = append(gr.labels, Label{f.InstanceLabel, inst})
				}
				slices.SortFunc(gr.labels, func(a, b Label) int {
					if a.Name < b.Name {
						return -1
					}
					if a.Name > b.Name {
						return 1
					}
					return 0
				})
				g.groups = append(g.groups, gr)
				g.series += len(f.Fields)
			}
		}
	}
	return g, nil
}

// Hosts returns the fleet. The slice is shared: do not modify it.
func (g *Generator) Hosts() []Host { return g.hosts }

// Families returns the families each host reports.
func (g *Generator) Families() []*Family { return g.fams }

// Groups returns every group, host by host. The slice is shared: do not
// modify it.
func (g *Generator) Groups() []*Group { return g.groups }

// NumSeries returns the number of series in the fleet.
func (g *Generator) NumSeries() int { return g.series }

// rebooted reports whether host h reboots just before step. It is a pure
// function of the seed, the host and the step, so every group of the host
// agrees on it whatever order they are generated in.
func (g *Generator) rebooted(host, step int) bool {
	if g.opts.ResetProbability == 0 {
		return false
	}
	x := splitmix(g.opts.Seed ^ splitmix(uint64(host)<<32^uint64(step)))
	return float64(x>>11)/(1<<53) < g.opts.ResetProbability
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
