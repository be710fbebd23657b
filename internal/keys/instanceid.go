package keys

import "github.com/rosterkit/roster"

// InstanceID returns the instance ID of key, if key is the key of a valid
// instance ID under prefix, the ServicePrefix of one service. The ID is a
// string of its own: it keeps nothing of key alive, which matters to a
// cache holding many instances.
func InstanceID(prefix string, key []byte) (string, bool) {
	if len(key) <= len(prefix) || string(key[:len(prefix)]) != prefix {
		return "", false
	}
	id := string(key[len(prefix):])
	if roster.ValidateName("instance ID", id) != nil {
		return "", false
	}
	return id, true
}
