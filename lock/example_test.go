package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/lock"
)

// connect returns a client of a throwaway etcd member for the examples; an
// application creates its client with clientv3.New and its cluster's
// endpoints.
func connect() (*clientv3.Client, func()) {
	cli, stop, err := etcdtest.Standalone()
	if err != nil {
		log.Fatal(err)
	}
	return cli, stop
}

// Run a job while holding a lock. The job's context is cancelled if the
// lock is lost, and WithLock then says so.
func Example() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()

	mu, err := lock.NewMutex(cli, "nightly-report")
	if err != nil {
		log.Fatal(err)
	}
	defer mu.Close()

	err = lock.WithLock(ctx, mu.Lock, func(ctx context.Context) error {
		fmt.Println("holding", mu.Prefix())
		return nil
	})
	fmt.Println("released:", err == nil)
	// Output:
	// holding /roster/locks/nightly-report/
	// released: true
}

// Writes that must not happen once the lock is lost go through the Hold's
// transaction: etcd applies them only while the Hold's key still exists
// with its create revision.
func ExampleHold_Txn() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()

	mu, err := lock.NewMutex(cli, "billing")
	if err != nil {
		log.Fatal(err)
	}
	defer mu.Close()

	h, err := mu.Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	_, err = h.Txn(ctx).Then(clientv3.OpPut("/billing/cursor", "42")).Commit()
	fmt.Println("while held:", err)

	// Someone deletes the lock key (or the lease expires during a pause).
	cli.Delete(ctx, h.Key())
	<-h.Done()
	_, err = h.Txn(ctx).Then(clientv3.OpPut("/billing/cursor", "43")).Commit()
	fmt.Println("after the loss:", errors.Is(err, lock.ErrNotHeld), errors.Is(h.Err(), lock.ErrLost))
	// Output:
	// while held: <nil>
	// after the loss: true true
}
