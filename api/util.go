package api

import (
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

func sortLabelSets(ls []labels.Labels) {
	slices.SortFunc(ls, labels.Compare)
}
