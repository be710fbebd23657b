package election

import (
	"errors"
	"fmt"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/recipe"
)

var (
	// ErrLost is wrapped by a Leadership's Err after an involuntary end,
	// with the cause: ErrKeyDeleted, session.ErrExpired, ErrLeaseGone or
	// ErrClosed. It wraps roster.ErrLost.
	ErrLost = fmt.Errorf("election: %w", roster.ErrLost)

	// ErrNotLeader is returned by fenced writes and Proclaim once the
	// leadership has ended or etcd finds its key gone or replaced: nothing
	// was written.
	ErrNotLeader = errors.New("election: not leader")

	// ErrNoLeader is returned by Leader when no candidate is campaigning.
	ErrNoLeader = errors.New("election: no leader")

	// ErrResigned is a Leadership's Err after Resign.
	ErrResigned = errors.New("election: resigned")

	// ErrClosed is returned by calls on a closed Election, and is the Err
	// of a Leadership it resigned on Close. It wraps roster.ErrClosed.
	ErrClosed = fmt.Errorf("election: %w", roster.ErrClosed)

	// ErrBusy is returned by Campaign and Run while this Election already
	// campaigns or leads: an Election is one candidate.
	ErrBusy = errors.New("election: already campaigning or leading")

	// ErrKeyDeleted is the cause of a loss by the leader key's deletion (by
	// an operator, or with its lease).
	ErrKeyDeleted = recipe.ErrKeyDeleted

	// ErrStale is wrapped, with roster.ErrStale, by Leader.Err when Observe
	// could not confirm the state within twice its progress interval.
	ErrStale = fmt.Errorf("election: %w", roster.ErrStale)
)
