// Package keys is the single source of roster's etcd key layout. Every
// package builds and parses keys here, so the layout documented in package
// roster cannot drift between writers and readers.
//
// Functions that take a namespace expect one that passed ValidateNamespace
// and names that passed roster.ValidateName; they do not check again
// because they run on every write and every watch event.
package keys

import (
	"fmt"
	"strings"

	"github.com/rosterkit/roster"
)

// DefaultNamespace is the namespace used when none is configured.
const DefaultNamespace = roster.DefaultNamespace

// Segments under a namespace, one per kind of record.
const (
	servicesSegment  = "/services/"
	electionsSegment = "/elections/"
	locksSegment     = "/locks/"
)

// ValidateNamespace checks a namespace: it must start with '/' and must
// not end with one (the layout adds the separators), and its segments must
// be non-empty printable ASCII without spaces, and not "." or "..". The
// returned error wraps roster.ErrInvalidName.
func ValidateNamespace(ns string) error {
	if reason := namespaceProblem(ns); reason != "" {
		return fmt.Errorf("%w: namespace %q: %s", roster.ErrInvalidName, ns, reason)
	}
	return nil
}

// namespaceProblem returns why ns is not a valid namespace, or "" if it is.
func namespaceProblem(ns string) string {
	switch {
	case !strings.HasPrefix(ns, "/"):
		return "must start with '/'"
	case strings.HasSuffix(ns, "/"):
		return "must not end with '/'"
	}
	for seg := range strings.SplitSeq(ns[1:], "/") {
		switch seg {
		case "":
			return "empty segment"
		case ".", "..":
			return fmt.Sprintf("reserved segment %q", seg)
		}
		for i := 0; i < len(seg); i++ {
			if b := seg[i]; b < 0x21 || b > 0x7e {
				return fmt.Sprintf("segment %q contains byte 0x%02x; only printable ASCII without spaces is allowed", seg, b)
			}
		}
	}
	return ""
}
