package embedded

import "errors"

var (
	// ErrInsecureListen is returned when a listener would serve plain text on
	// an address other than loopback without WithInsecureNonLoopback.
	ErrInsecureListen = errors.New("embedded: refusing to serve plain text on a non-loopback address")
	// ErrPortInUse is returned when a listen address is already taken.
	ErrPortInUse = errors.New("embedded: address already in use")
	// ErrInvalidConfig is returned for options that cannot work together.
	ErrInvalidConfig = errors.New("embedded: invalid configuration")
)
