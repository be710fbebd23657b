package lock

// Key layout of the semaphores and RW locks, which etcd has no recipe
// for. The mutex uses etcd's own layout (keys.LockPrefix).
const (
	semaphoresSegment = "/semaphores/"
	rwlocksSegment    = "/rwlocks/"

	// Tags that start the key names of an RW lock's waiters. Anything
	// else under the prefix counts as a writer: a stranger's key must not
	// let readers in beside it.
	readTag  = "read-"
	writeTag = "write-"
)

// semaphorePrefix is "<ns>/semaphores/<name>/": its holders and waiters
// are <prefix><lease ID in hex>-<random suffix>, valued with the limit.
func semaphorePrefix(ns, name string) string { return ns + semaphoresSegment + name + "/" }

// rwlockPrefix is "<ns>/rwlocks/<name>/": its readers and writers are
// <prefix>read-<lease hex>-<suffix> and <prefix>write-<lease hex>-<suffix>.
func rwlockPrefix(ns, name string) string { return ns + rwlocksSegment + name + "/" }
