package election

import (
	"sync"

	"github.com/rosterkit/roster/session"
)

// A lease has one key per election, so two Elections of one name on one
// shared session.Manager would campaign with the same key and both believe
// they lead. New refuses the second (ErrSharedName) until the first is
// closed; Elections with their own sessions never clash.
var sharing = struct {
	mu   sync.Mutex
	used map[sharedName]bool
}{used: make(map[sharedName]bool)}

type sharedName struct {
	mgr    *session.Manager
	prefix string
}

// claimShared records that an Election of prefix rides on mgr.
func claimShared(mgr *session.Manager, prefix string) bool {
	sharing.mu.Lock()
	defer sharing.mu.Unlock()
	k := sharedName{mgr, prefix}
	if sharing.used[k] {
		return false
	}
	sharing.used[k] = true
	return true
}

func releaseShared(mgr *session.Manager, prefix string) {
	sharing.mu.Lock()
	defer sharing.mu.Unlock()
	delete(sharing.used, sharedName{mgr, prefix})
}
