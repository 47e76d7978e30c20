package gen

import (
	"fmt"
	"math/rand/v2"
)

// HostLabelNames are the labels every series of a host carries, sorted.
var HostLabelNames = []string{"datacenter", "host", "os", "rack", "region", "service"}

// Host is one machine of the fleet and its static labels.
type Host struct {
	Name, Region, Datacenter, Rack, OS, Service string
}

// Labels returns the host's labels in the order of HostLabelNames.
func (h Host) Labels() []string {
	return []string{h.Datacenter, h.Name, h.OS, h.Rack, h.Region, h.Service}
}

var (
	regions  = []string{"us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1"}
	zones    = []string{"a", "b", "c"}
	oses     = []string{"ubuntu-22.04", "ubuntu-22.04", "ubuntu-24.04", "debian-12", "debian-12", "rhel-9", "amazonlinux-2023"}
	services = []string{"api", "web", "db", "cache", "queue", "search", "auth", "billing", "batch", "ingest"}
)

// Hosts returns n hosts. Host i depends only on seed and i, so Hosts(m,
// seed) is a prefix of Hosts(n, seed) for m < n: a query generator that
// knows the seed and host count names the same hosts as the writer.
func Hosts(n int, seed uint64) []Host {
	hs := make([]Host, n)
	for i := range hs {
		r := rand.New(rand.NewPCG(seed, 0x5eed0000_0000_0000|uint64(i)))
		region := regions[r.IntN(len(regions))]
		hs[i] = Host{
			Name:       fmt.Sprintf("host_%d", i),
			Region:     region,
			Datacenter: region + zones[r.IntN(len(zones))],
			Rack:       fmt.Sprintf("rack-%02d", r.IntN(24)),
			OS:         oses[r.IntN(len(oses))],
			Service:    services[r.IntN(len(services))],
		}
	}
	return hs
}
