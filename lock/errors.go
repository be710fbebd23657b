package lock

import (
	"errors"

	"github.com/rosterkit/roster/internal/recipe"
)

// Sentinel errors, usable with errors.Is. Calls wrap them with the lock's
// name or key.
var (
	// ErrLocked is returned by TryLock, TryRLock and TryAcquire when the
	// lock is held, or every permit is taken, by someone else. They leave
	// no key behind.
	ErrLocked = errors.New("lock: held by another holder")

	// ErrNotHeld is returned by a Hold's fenced transaction when etcd finds
	// the holder's key gone or replaced, or the Hold has already ended: the
	// write was not applied.
	ErrNotHeld = errors.New("lock: not held")

	// ErrLost is what Hold.Err wraps when a hold ended without Release: its
	// session ended (wrapping session.ErrExpired or session.ErrLeaseGone) or
	// its key was deleted. Whoever acted under the lock must stop: another
	// holder may already be inside.
	ErrLost = errors.New("lock: lost")

	// ErrKeyDeleted is the cause ErrLost wraps when a Hold's key was deleted
	// (by someone else, or with its lease) or replaced by a newer one.
	ErrKeyDeleted = recipe.ErrKeyDeleted

	// ErrReleased is what Hold.Err returns after Release.
	ErrReleased = errors.New("lock: released")

	// ErrClosed is returned by calls on a Mutex, Semaphore or RWMutex after
	// Close, and is wrapped by Hold.Err for holds that Close released.
	ErrClosed = errors.New("lock: closed")

	// ErrLimitMismatch is returned by a Semaphore whose limit differs from
	// the one the semaphore's oldest key records. The key the acquisition
	// queued is taken back out (until that lands, others wait for it), so
	// nobody is admitted beyond the limit in force.
	ErrLimitMismatch = errors.New("lock: semaphore limit differs from its holders'")

	// ErrInvalidLimit is returned by NewSemaphore for a limit below 1.
	ErrInvalidLimit = errors.New("lock: invalid semaphore limit")

	// ErrInvalidOption reports options that contradict each other.
	ErrInvalidOption = errors.New("lock: invalid option")
)
