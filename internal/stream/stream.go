// Package stream is the one shape of roster's state streams: each call to
// Subscribe gets its own channel, so no item is split between readers; the
// producer never waits for a reader, because a reader that falls behind has
// its queued items folded together by the stream's Merge rule, which keeps
// the newest state; and the channel is closed when the reader's context ends
// or the stream is closed.
package stream

import (
	"context"
	"sync"
)

// Merge folds item into a reader's queue of undelivered items and returns
// the new queue. It decides what a slow reader may lose: never the newest
// state.
type Merge[T any] func(queue []T, item T) []T

// Bounded keeps at most n undelivered items, dropping the oldest: a reader
// that falls behind skips old items but always gets the newest.
func Bounded[T any](n int) Merge[T] {
	return func(q []T, item T) []T {
		q = append(q, item)
		if len(q) > n {
			q = append(q[:0], q[len(q)-n:]...)
		}
		return q
	}
}

// Stream fans items out to its subscribers. The zero value is not usable;
// use New.
type Stream[T any] struct {
	merge Merge[T]

	mu     sync.Mutex
	subs   map[*sub[T]]struct{}
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// New returns a stream whose slow readers' queues are folded by merge.
func New[T any](merge Merge[T]) *Stream[T] {
	return &Stream[T]{merge: merge, subs: make(map[*sub[T]]struct{}), done: make(chan struct{})}
}

type sub[T any] struct {
	mu    sync.Mutex
	queue []T
	wake  chan struct{} // capacity 1: "the queue changed"
}

// Subscribe returns a new channel of the items published from now on, each
// of first's items before them. first is called under the stream's lock, so
// that the items it returns (typically the current state) and the published
// ones neither overlap nor leave a gap; it may be nil. The channel is closed
// once ctx ends or the stream is closed; it is closed at once on a closed
// stream.
func (s *Stream[T]) Subscribe(ctx context.Context, first func() []T) <-chan T {
	out := make(chan T)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(out)
		return out
	}
	sb := &sub[T]{wake: make(chan struct{}, 1)}
	if first != nil {
		for _, item := range first() {
			sb.queue = s.merge(sb.queue, item)
		}
	}
	s.subs[sb] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.forward(ctx, sb, out)
	return out
}

// Publish queues item for every subscriber. It never blocks on a reader.
func (s *Stream[T]) Publish(item T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sb := range s.subs {
		sb.mu.Lock()
		sb.queue = s.merge(sb.queue, item)
		sb.mu.Unlock()
		select {
		case sb.wake <- struct{}{}:
		default:
		}
	}
}

// Close closes every subscriber's channel and waits until they are closed.
// Items not yet delivered are dropped. It is idempotent.
func (s *Stream[T]) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Len is the number of open subscriptions.
func (s *Stream[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

func (s *Stream[T]) forward(ctx context.Context, sb *sub[T], out chan<- T) {
	defer s.wg.Done()
	defer close(out)
	defer func() {
		s.mu.Lock()
		delete(s.subs, sb)
		s.mu.Unlock()
	}()
	for {
		// The head leaves the queue before it is offered, so later items
		// merge only with items the reader has not been offered.
		sb.mu.Lock()
		n := len(sb.queue)
		var head T
		if n > 0 {
			var zero T
			head, sb.queue[0] = sb.queue[0], zero
			sb.queue = sb.queue[1:]
		}
		sb.mu.Unlock()
		if n == 0 {
			select {
			case <-sb.wake:
				continue
			case <-ctx.Done():
				return
			case <-s.done:
				return
			}
		}
		select {
		case out <- head:
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}
