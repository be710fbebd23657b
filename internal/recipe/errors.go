package recipe

import "errors"

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
)
