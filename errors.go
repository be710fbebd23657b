package roster

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every package. Package errors wrap them (for
// example registry.ErrClosed wraps ErrClosed), and calls wrap those with
// the offending name or value, so match them with errors.Is rather than by
// comparing error strings.
var (
	// ErrLost is wrapped by the Err of a handle (a session, a leadership, a
	// lock hold) that ended without its owner asking: its lease expired or
	// could not be renewed in time, or its key was deleted. The cause is
	// wrapped too. Whoever acted under the handle must stop.
	ErrLost = errors.New("roster: lost")

	// ErrClosed is wrapped by errors of calls on something its owner closed.
	ErrClosed = errors.New("roster: closed")

	// ErrStale is wrapped by the Err of a view of etcd (a discovery cache,
	// an election observer) that could not confirm it is current within its
	// bound: etcd, or the path to it, stopped answering. The view is still
	// served, as of its last confirmation.
	ErrStale = errors.New("roster: stale")

	// ErrNilClient is returned by constructors given a nil *clientv3.Client.
	ErrNilClient = errors.New("roster: nil etcd client")

	// ErrInvalidOption reports an option out of range, such as a negative
	// TTL, or options that contradict each other. Zero values are never
	// invalid: they mean the default.
	ErrInvalidOption = errors.New("roster: invalid option")

	// ErrInvalidName reports a service name, instance ID, election or lock
	// name, or namespace that breaks the name rules (see ValidateName).
	ErrInvalidName = errors.New("roster: invalid name")

	// ErrInvalidAddress reports an Instance.Addr that is not host:port with
	// a non-empty host and a numeric port in 1..65535.
	ErrInvalidAddress = errors.New("roster: invalid address")

	// ErrInvalidMetadata reports an Instance.Metadata key or value that
	// breaks the metadata limits, or metadata that makes the encoded value
	// larger than MaxValueSize.
	ErrInvalidMetadata = errors.New("roster: invalid metadata")

	// ErrInvalidInstance reports an Instance whose Weight or Status is out
	// of range.
	ErrInvalidInstance = errors.New("roster: invalid instance")

	// ErrInvalidValue reports bytes that DecodeInstance cannot turn into a
	// valid Instance: corrupt data, values written by something other than
	// roster, or well-formed values whose fields break the rules. Watchers
	// skip such keys instead of failing, so one bad writer cannot take
	// discovery down.
	ErrInvalidValue = errors.New("roster: invalid value")

	// ErrUnsupportedVersion reports a value written in a newer encoding
	// version than this build understands. It wraps ErrInvalidValue, so
	// code that skips invalid values skips these too; check for it
	// specifically to tell "upgrade roster" apart from "garbage in etcd".
	ErrUnsupportedVersion = fmt.Errorf("%w: unsupported version", ErrInvalidValue)
)

// maxQuoted caps how much of a rejected value an error message repeats, so
// that a huge bogus input does not turn into a huge log line.
const maxQuoted = 64

// clip shortens s for use in an error message.
func clip(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
