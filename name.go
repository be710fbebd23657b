package roster

import "fmt"

// MaxNameLen is the longest service name or instance ID, in bytes. Names
// are key segments in etcd and appear in logs and metrics labels, so they
// are kept short.
const MaxNameLen = 128

// ValidateName checks a name that becomes one segment of an etcd key: a
// service name, an instance ID, an election or a lock name. kind says what
// the name is for and appears in the error, e.g. "service" or "instance ID".
//
// A valid name is 1..MaxNameLen bytes of printable ASCII without spaces,
// contains no '/' (it would split the key into extra segments) and is not
// "." or ".." (which tools treating keys as paths would resolve away).
// Non-ASCII is rejected too, so names are safe in keys, URLs, metric
// labels and shells without escaping. The returned error wraps
// ErrInvalidName.
func ValidateName(kind, name string) error {
	if reason := nameProblem(name); reason != "" {
		return fmt.Errorf("%w: %s %q: %s", ErrInvalidName, kind, clip(name), reason)
	}
	return nil
}

// nameProblem returns why name is not a valid name, or "" if it is.
func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("longer than %d bytes", MaxNameLen)
	case name == "." || name == "..":
		return "reserved"
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b == '/':
			return "contains '/'"
		case b == ' ':
			return "contains a space"
		case b < 0x21 || b > 0x7e:
			return fmt.Sprintf("contains byte 0x%02x at offset %d; only printable ASCII is allowed", b, i)
		}
	}
	return ""
}
