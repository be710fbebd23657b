package keys

import (
	"strings"

	"github.com/rosterkit/roster"
)

// drainSegment holds operators' drain requests, one key per instance.
const drainSegment = "/drain/"

// DrainsPrefix returns the prefix of all drain requests in ns:
// "<ns>/drain/".
func DrainsPrefix(ns string) string {
	return ns + drainSegment
}

// DrainPrefix returns the prefix of the drain requests of one service:
// "<ns>/drain/<service>/".
func DrainPrefix(ns, service string) string {
	return ns + drainSegment + service + "/"
}

// DrainKey returns the key of an operator's request to drain one
// instance: "<ns>/drain/<service>/<id>". Its value is the reason.
func DrainKey(ns, service, id string) string {
	return ns + drainSegment + service + "/" + id
}

// ParseDrainKey splits a drain key of ns into its service and id. ok is
// false for any key DrainKey could not have built from valid names.
func ParseDrainKey(ns, key string) (service, id string, ok bool) {
	rest, found := strings.CutPrefix(key, DrainsPrefix(ns))
	if !found {
		return "", "", false
	}
	service, id, found = strings.Cut(rest, "/")
	if !found || roster.ValidateName("service", service) != nil || roster.ValidateName("instance ID", id) != nil {
		return "", "", false
	}
	return service, id, true
}
