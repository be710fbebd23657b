package discovery

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is an injectable clock, so cool-downs need no waiting.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var errDown = errors.New("connection refused")

func TestEjectionAfterConsecutiveFailuresAndBack(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	src := newStatic(nInstances(3)...)
	opts := []PickerOption{WithEjection(3, 10*time.Second), WithClock(clock.Now)}
	pickers := map[string]func() (Picked, error){
		"rr":       must(NewRoundRobin(src, opts...)).Pick,
		"random":   must(NewRandom(src, opts...)).Pick,
		"weighted": must(NewWeighted(src, opts...)).Pick,
		"p2c":      must(NewP2C(src, opts...)).Pick,
	}
	h := must(NewConsistentHash(src, opts...))
	pickers["hash"] = func() (Picked, error) { return h.Pick("sticky-key") }
	for name, pick := range pickers {
		t.Run(name, func(t *testing.T) {
			// Fail every call to the instance the key or rotation gives
			// us first, until it has failed 3 times in a row.
			first, err := pick()
			require.NoError(t, err)
			bad := first.Instance.ID
			first.Done(errDown)
			fails := 1
			for fails < 3 {
				p, err := pick()
				require.NoError(t, err)
				if p.Instance.ID == bad {
					fails++
					p.Done(errDown)
				} else {
					p.Done(nil)
				}
			}
			for range 300 {
				p, err := pick()
				require.NoError(t, err)
				require.NotEqual(t, bad, p.Instance.ID, "ejected instance picked")
				p.Done(nil)
			}
			clock.Advance(10 * time.Second)
			seen := false
			for range 300 {
				p, err := pick()
				require.NoError(t, err)
				seen = seen || p.Instance.ID == bad
				p.Done(nil)
			}
			assert.True(t, seen, "instance not back after the cool-down")
		})
	}
}

func TestEjectionNeedsConsecutiveFailures(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	src := newStatic(nInstances(2)...)
	p := must(NewRoundRobin(src, WithEjection(2, time.Minute), WithClock(clock.Now)))
	fail := true
	for range 50 {
		pk, err := p.Pick()
		require.NoError(t, err)
		if pk.Instance.ID == "i00000" {
			// Failures alternate with successes: never 2 in a row.
			if fail {
				pk.Done(errDown)
			} else {
				pk.Done(nil)
			}
			fail = !fail
		} else {
			pk.Done(errDown) // the other's failures are its own business
			pk, err := p.Pick()
			require.NoError(t, err)
			pk.Done(nil)
		}
	}
	assert.True(t, p.ejectedUntil("i00000").IsZero())
}

func TestLastInstanceIsNeverEjected(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	src := newStatic(nInstances(2)...)
	p := must(NewRoundRobin(src, WithEjection(1, time.Minute), WithClock(clock.Now)))
	for range 20 {
		pk, err := p.Pick()
		require.NoError(t, err)
		pk.Done(errDown) // everything fails
	}
	ejected := 0
	for _, id := range []string{"i00000", "i00001"} {
		if !p.ejectedUntil(id).IsZero() {
			ejected++
		}
	}
	assert.Equal(t, 1, ejected, "one of two failing instances ejected, never both")
	for range 10 {
		pk, err := p.Pick()
		require.NoError(t, err, "the last instance keeps being picked")
		pk.Done(nil)
	}
	// Ejection off: nothing is ever ejected.
	q := must(NewRoundRobin(src, WithoutEjection(), WithClock(clock.Now)))
	for range 20 {
		pk, _ := q.Pick()
		pk.Done(errDown)
	}
	assert.True(t, q.ejectedUntil("i00000").IsZero())
	assert.True(t, q.ejectedUntil("i00001").IsZero())
}

func TestEjectedReportsTheCoolDown(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	p := must(NewRoundRobin(newStatic(nInstances(2)...), WithEjection(1, 10*time.Second), WithClock(clock.Now)))
	pk, err := p.Pick()
	require.NoError(t, err)
	bad := pk.Instance.ID
	require.False(t, p.Ejected(bad))
	pk.Done(errDown)
	require.True(t, p.Ejected(bad), "ejected after one failure")
	clock.Advance(10 * time.Second)
	require.False(t, p.Ejected(bad), "back after the cool-down")
	require.False(t, p.Ejected("unknown"))
}
