package embedded

import (
	"errors"
	"fmt"

	"github.com/rosterkit/roster"
)

var (
	// ErrInsecureListen is returned when a listener would serve plain text on
	// an address other than loopback without WithInsecureNonLoopback.
	ErrInsecureListen = errors.New("embedded: refusing to serve plain text on a non-loopback address")
	// ErrPortInUse is returned when a listen address is already taken.
	ErrPortInUse = errors.New("embedded: address already in use")
	// ErrInvalidConfig is returned for options out of range (negative
	// durations, sizes or counts; zero always means the default) and options
	// that cannot work together. It wraps roster.ErrInvalidOption.
	ErrInvalidConfig = fmt.Errorf("embedded: invalid configuration: %w", roster.ErrInvalidOption)
)
