package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/rosterkit/roster/internal/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.True(t, ok, "channel closed")
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered within 5 s")
		panic("unreachable")
	}
}

func requireClosed[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed within 5 s")
		}
	}
}

func TestEveryReaderGetsEveryItem(t *testing.T) {
	s := stream.New(stream.Bounded[int](100))
	defer s.Close()
	ctx := t.Context()
	a := s.Subscribe(ctx, func() []int { return []int{0} })
	b := s.Subscribe(ctx, func() []int { return []int{0} })
	for i := 1; i <= 10; i++ {
		s.Publish(i)
	}
	for _, ch := range []<-chan int{a, b} {
		for want := 0; want <= 10; want++ {
			require.Equal(t, want, recv(t, ch), "no item is split between readers")
		}
	}
}

func TestSlowReaderGetsTheNewest(t *testing.T) {
	s := stream.New(stream.Bounded[int](3))
	defer s.Close()
	ch := s.Subscribe(t.Context(), nil)
	for i := 1; i <= 1000; i++ {
		s.Publish(i) // never blocks, although nobody reads
	}
	var got []int
	for len(got) == 0 || got[len(got)-1] != 1000 {
		got = append(got, recv(t, ch))
	}
	require.LessOrEqual(t, len(got), 4, "the oldest were dropped: %v", got)
	for i := 1; i < len(got); i++ {
		require.Less(t, got[i-1], got[i], "in order: %v", got)
	}
}

// A merging rule folds queued items, never one already offered to the
// reader: nothing is delivered twice.
func TestMergeNeverRedelivers(t *testing.T) {
	sum := func(q []int, item int) []int {
		if len(q) == 0 {
			return append(q, item)
		}
		q[0] += item
		return q
	}
	s := stream.New[int](sum)
	defer s.Close()
	ch := s.Subscribe(t.Context(), nil)
	total := 0
	for i := 1; i <= 500; i++ {
		s.Publish(i)
	}
	for total < 500*501/2 {
		total += recv(t, ch)
	}
	require.Equal(t, 500*501/2, total)
	select {
	case v := <-ch:
		t.Fatalf("delivered more than was published: %d", v)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestEndsOnContextAndClose(t *testing.T) {
	s := stream.New(stream.Bounded[int](1))
	ctx, cancel := context.WithCancel(t.Context())
	a := s.Subscribe(ctx, nil)
	b := s.Subscribe(t.Context(), nil)
	require.Equal(t, 2, s.Len())
	cancel()
	requireClosed(t, a)
	require.Eventually(t, func() bool { return s.Len() == 1 }, 5*time.Second, time.Millisecond)
	s.Publish(1) // unread: Close must not wait for a reader
	s.Close()
	requireClosed(t, b)
	s.Close() // idempotent
	requireClosed(t, s.Subscribe(t.Context(), nil))
}
