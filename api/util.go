package api

import (
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

func sortedKeys(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortLabelSets(ls []labels.Labels) {
	slices.SortFunc(ls, labels.Compare)
}
