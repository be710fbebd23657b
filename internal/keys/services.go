package keys

import (
	"strings"

	"github.com/rosterkit/roster"
)

// ServicesPrefix returns the prefix of all instance keys in ns:
// "<ns>/services/".
func ServicesPrefix(ns string) string {
	return ns + servicesSegment
}

// ServicePrefix returns the prefix of the instance keys of one service:
// "<ns>/services/<service>/". The trailing slash matters: without it a
// prefix watch on "user" would also see "user-admin".
func ServicePrefix(ns, service string) string {
	return ns + servicesSegment + service + "/"
}

// InstanceKey returns the key of one instance:
// "<ns>/services/<service>/<id>".
func InstanceKey(ns, service, id string) string {
	return ns + servicesSegment + service + "/" + id
}

// ParseInstanceKey splits an instance key of ns into its service and id.
// ok is false for any key that InstanceKey could not have built from valid
// names: another namespace, a missing or extra segment, or an invalid name.
// Watchers use it to skip foreign keys under the prefix.
func ParseInstanceKey(ns, key string) (service, id string, ok bool) {
	rest, found := strings.CutPrefix(key, ServicesPrefix(ns))
	if !found {
		return "", "", false
	}
	service, id, found = strings.Cut(rest, "/")
	if !found || roster.ValidateName("service", service) != nil || roster.ValidateName("instance ID", id) != nil {
		return "", "", false
	}
	return service, id, true
}
