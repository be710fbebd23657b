package discovery

import (
	"maps"

	"github.com/rosterkit/roster"
)

// Filter selects instances. It receives a pointer into a snapshot to
// avoid copying; it must not modify the instance or keep the pointer.
// A picker runs its filter once per change of an instance, not per pick.
type Filter func(*roster.Instance) bool

// MatchMetadata accepts instances whose metadata holds every given
// key/value pair, e.g. MatchMetadata(map[string]string{"zone": "eu-1"}).
// An empty map accepts all. The map is copied.
func MatchMetadata(want map[string]string) Filter {
	want = maps.Clone(want)
	return func(in *roster.Instance) bool {
		for k, v := range want {
			if got, ok := in.Metadata[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
}

// HasStatus accepts instances in any of the given statuses. The empty
// status counts as roster.StatusServing, as in roster.Instance.Serving.
func HasStatus(statuses ...roster.Status) Filter {
	return func(in *roster.Instance) bool {
		s := in.Status
		if s == "" {
			s = roster.StatusServing
		}
		for _, want := range statuses {
			if s == want {
				return true
			}
		}
		return false
	}
}

// All accepts instances every filter accepts; nil filters are ignored.
func All(filters ...Filter) Filter {
	return func(in *roster.Instance) bool {
		for _, f := range filters {
			if f != nil && !f(in) {
				return false
			}
		}
		return true
	}
}
