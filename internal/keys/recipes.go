package keys

import "strings"

// Prefixes of every election, mutex, semaphore and RW lock of a namespace,
// for tools that list them all. A recipe's own keys are
// <prefix><name>/<rest>, where rest is the lease in hex for elections and
// mutexes (etcd's layout), and <lease hex>-<suffix> (semaphores) or
// read-/write-<lease hex>-<suffix> (RW locks).
const (
	semaphoresSegment = "/semaphores/"
	rwlocksSegment    = "/rwlocks/"
)

// ElectionsPrefix is "<ns>/elections/".
func ElectionsPrefix(ns string) string { return ns + electionsSegment }

// LocksPrefix is "<ns>/locks/", the prefix of every mutex.
func LocksPrefix(ns string) string { return ns + locksSegment }

// SemaphoresPrefix is "<ns>/semaphores/".
func SemaphoresPrefix(ns string) string { return ns + semaphoresSegment }

// RWLocksPrefix is "<ns>/rwlocks/".
func RWLocksPrefix(ns string) string { return ns + rwlocksSegment }

// SplitRecipeKey splits a key under one of the prefixes above into the
// recipe's name and the rest of the key. ok is false if key lacks prefix or
// has no name segment followed by a non-empty rest.
func SplitRecipeKey(prefix, key string) (name, rest string, ok bool) {
	tail, found := strings.CutPrefix(key, prefix)
	if !found {
		return "", "", false
	}
	name, rest, found = strings.Cut(tail, "/")
	if !found || name == "" || rest == "" {
		return "", "", false
	}
	return name, rest, true
}
