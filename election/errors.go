package election

import (
	"errors"

	"github.com/rosterkit/roster/internal/recipe"
)

var (
	// ErrNotLeader is returned by a Leadership's fenced writes and Proclaim
	// once it is no longer the leader: etcd found its key gone or replaced,
	// or Done was already closed.
	ErrNotLeader = errors.New("election: not leader")

	// ErrNoLeader is returned by Leader when no candidate is campaigning.
	ErrNoLeader = errors.New("election: no leader")

	// ErrResigned is a Leadership's Err after Resign.
	ErrResigned = errors.New("election: resigned")

	// ErrClosed is returned by calls on a closed Election, and is the Err of
	// a Leadership it resigned on Close.
	ErrClosed = errors.New("election: closed")

	// ErrBusy is returned by Campaign while this Election already
	// campaigns or leads. An Election is one candidate: use one per
	// concurrent campaign.
	ErrBusy = errors.New("election: already campaigning or leading")

	// ErrSharedName is returned by New for a second open Election of one
	// name on one shared session.Manager: a lease has one key per
	// election, so both would lead. Close the first, or give each its own
	// Manager.
	ErrSharedName = errors.New("election: an open Election of this name already uses the session manager")

	// ErrKeyDeleted is a Leadership's Err when its key was deleted (by an
	// operator, or with its lease) while it led. The session is renewed at
	// once then, so if the lease went too, the session's Err soon says
	// session.ErrLeaseGone and the next campaign takes a fresh one.
	ErrKeyDeleted = recipe.ErrKeyDeleted
)
