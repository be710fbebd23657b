package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/rosterkit/roster/lock"
)

// A semaphore admits at most its limit of holders at once.
func ExampleSemaphore() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()

	sem, err := lock.NewSemaphore(cli, "crawlers", 2)
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()

	a, _ := sem.Acquire(ctx)
	b, _ := sem.Acquire(ctx)
	_, err = sem.TryAcquire(ctx)
	fmt.Println("third:", errors.Is(err, lock.ErrLocked))
	a.Release(ctx)
	c, err := sem.TryAcquire(ctx)
	fmt.Println("after a release:", err)
	b.Release(ctx)
	c.Release(ctx)
	// Output:
	// third: true
	// after a release: <nil>
}

// Readers share an RWMutex; a writer has it alone.
func ExampleRWMutex() {
	ctx := context.Background()
	cli, stop := connect()
	defer stop()

	rw, err := lock.NewRWMutex(cli, "config")
	if err != nil {
		log.Fatal(err)
	}
	defer rw.Close()

	r1, _ := rw.RLock(ctx)
	r2, err := rw.TryRLock(ctx)
	fmt.Println("second reader:", err)
	_, err = rw.TryLock(ctx)
	fmt.Println("writer while read:", errors.Is(err, lock.ErrLocked))
	r1.Release(ctx)
	r2.Release(ctx)
	w, err := rw.TryLock(ctx)
	fmt.Println("writer alone:", err)
	w.Release(ctx)
	// Output:
	// second reader: <nil>
	// writer while read: true
	// writer alone: <nil>
}
