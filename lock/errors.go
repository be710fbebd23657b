package lock

import (
	"errors"
	"fmt"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/recipe"
)

// Sentinel errors, usable with errors.Is. Calls wrap them with the lock's
// name or key.
var (
	// ErrLocked is returned by TryLock, TryRLock and TryAcquire when the
	// lock is held, or every permit is taken, by someone else. They leave
	// no key behind.
	ErrLocked = errors.New("lock: held by another holder")

	// ErrNotHeld is returned by a Hold's fenced writes once the Hold has
	// ended or etcd finds its key gone or replaced: nothing was written.
	ErrNotHeld = errors.New("lock: not held")

	// ErrLost is wrapped by Hold.Err after an involuntary end, with the
	// cause: ErrKeyDeleted, or the session's session.ErrExpired,
	// ErrLeaseGone or ErrClosed. It wraps roster.ErrLost.
	ErrLost = fmt.Errorf("lock: %w", roster.ErrLost)

	// ErrKeyDeleted is the cause of a loss by the Hold's key's deletion (by
	// someone else, or with its lease) or replacement.
	ErrKeyDeleted = recipe.ErrKeyDeleted

	// ErrReleased is Hold.Err after Release.
	ErrReleased = errors.New("lock: released")

	// ErrClosed is returned by calls on a closed Mutex, Semaphore or
	// RWMutex, and is Hold.Err for holds Close released. It wraps
	// roster.ErrClosed.
	ErrClosed = fmt.Errorf("lock: %w", roster.ErrClosed)

	// ErrLimitMismatch is returned by a Semaphore whose limit differs from
	// the one its oldest key records; its own key is taken back out.
	ErrLimitMismatch = errors.New("lock: semaphore limit differs from its holders'")

	// ErrInvalidLimit is returned by NewSemaphore for a limit below 1. It
	// wraps roster.ErrInvalidOption.
	ErrInvalidLimit = fmt.Errorf("lock: invalid semaphore limit: %w", roster.ErrInvalidOption)
)
