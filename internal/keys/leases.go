package keys

import (
	"strconv"
	"strings"
)

// ElectionPrefix returns the prefix of the candidate keys of one election:
// "<ns>/elections/<name>/". Candidates are LeaseKey(prefix, lease), which
// is what etcd's concurrency.NewElection writes given ElectionPfx: etcd
// appends the "/" itself, so ElectionPrefix equals ElectionPfx + "/".
// concurrency.ResumeElection is the exception: it does not append, so it
// takes ElectionPrefix.
func ElectionPrefix(ns, name string) string {
	return ElectionPfx(ns, name) + "/"
}

// ElectionPfx returns "<ns>/elections/<name>", without a trailing slash:
// the pfx argument for concurrency.NewElection and etcdctl elect, so
// roster candidates and theirs take part in the same election.
func ElectionPfx(ns, name string) string {
	return ns + electionsSegment + name
}

// LockPrefix returns the prefix of the waiter keys of one lock:
// "<ns>/locks/<name>/". Waiters are LeaseKey(prefix, lease), which is what
// etcd's concurrency.NewMutex writes given LockPfx: etcd appends the "/"
// itself, so LockPrefix equals LockPfx + "/".
func LockPrefix(ns, name string) string {
	return LockPfx(ns, name) + "/"
}

// LockPfx returns "<ns>/locks/<name>", without a trailing slash: the pfx
// argument for concurrency.NewMutex and etcdctl lock, so roster lockers and
// theirs exclude each other.
func LockPfx(ns, name string) string {
	return ns + locksSegment + name
}

// LeaseKey returns prefix followed by lease in lowercase hexadecimal, the
// form etcd's concurrency package uses (fmt's %x of the lease ID).
func LeaseKey(prefix string, lease int64) string {
	return prefix + strconv.FormatInt(lease, 16)
}

// ParseLeaseKey returns the lease ID of a key built by LeaseKey with the
// same prefix. ok is false if key lacks the prefix or the rest is not the
// exact hexadecimal LeaseKey writes (no upper case, leading zeros, signs
// other than '-', or extra segments), so ParseLeaseKey and LeaseKey are
// inverses.
func ParseLeaseKey(prefix, key string) (int64, bool) {
	rest, found := strings.CutPrefix(key, prefix)
	if !found {
		return 0, false
	}
	lease, err := strconv.ParseInt(rest, 16, 64)
	if err != nil || strconv.FormatInt(lease, 16) != rest {
		return 0, false
	}
	return lease, true
}
