package recipe

import (
	"errors"
	"fmt"

	"github.com/rosterkit/roster"
)

var (
	// ErrKeyDeleted means our key is gone, or was replaced by a key of the
	// same name with another create revision: whatever it held or waited
	// for is lost. When the session is known to have ended as well, the
	// error also wraps the session's error.
	ErrKeyDeleted = errors.New("roster: key deleted or replaced")

	// ErrForeignKey means the key our lease would use already exists but is
	// attached to another lease: something other than a recipe participant
	// wrote it, and it would not vanish with our session.
	ErrForeignKey = errors.New("roster: key exists under another lease")

	// ErrClientClosed is returned at once for a request on an etcd client
	// its owner closed (clientv3 itself retries for seconds before saying
	// so). It wraps roster.ErrClosed.
	ErrClientClosed = fmt.Errorf("etcd client closed: %w", roster.ErrClosed)
)
