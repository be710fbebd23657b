package discovery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster"
)

// serve plays n sequential calls through p, each taking the latency its
// instance has in lat, on the fake clock, and counts them by instance.
func serve(p *P2C, clock *fakeClock, lat map[string]time.Duration, n int) map[string]int {
	got := make(map[string]int)
	for range n {
		pk, err := p.Pick()
		if err != nil {
			panic(err)
		}
		d := lat[pk.Instance.ID]
		clock.Advance(d)
		p.Observe(pk, d)
		pk.Done(nil)
		got[pk.Instance.ID]++
	}
	return got
}

// oneSlow returns a P2C with a 1 s decay on a fake clock over three
// instances, and their latencies: the first (slow) at 20 ms, the others at
// 0.5 ms.
func oneSlow() (p *P2C, clock *fakeClock, lat map[string]time.Duration, slow string) {
	clock = &fakeClock{now: time.Unix(1e9, 0)}
	src := newStatic(nInstances(3)...)
	p = must(NewP2C(src, WithClock(clock.Now), WithLatencyDecay(time.Second)))
	slow = src.Snapshot().At(0).ID
	lat = map[string]time.Duration{slow: 20 * time.Millisecond}
	for _, in := range nInstances(3)[1:] {
		lat[in.ID] = 500 * time.Microsecond
	}
	return p, clock, lat, slow
}

// With latencies reported, one caller's calls (never more than one in
// flight, so in-flight counts cannot tell) avoid a slow instance, and come
// back to it once it is fast again, through its probes.
func TestP2CLatencyAvoidsSlowAndRecovers(t *testing.T) {
	p, clock, lat, slow := oneSlow()

	serve(p, clock, lat, 300) // learn
	got := serve(p, clock, lat, 3000)
	share := float64(got[slow]) / 3000
	t.Logf("slow at 20 ms, fast at 0.5 ms: slow gets %.1f%% of 3000 sequential calls", 100*share)
	assert.Less(t, share, 0.05)
	f1, f2 := nInstances(3)[1].ID, nInstances(3)[2].ID
	assert.InDelta(t, 0.5, float64(got[f1])/float64(got[f1]+got[f2]), 0.1, "instances alike share the calls")

	lat[slow] = 500 * time.Microsecond
	start := clock.Now()
	for share < 0.25 {
		got = serve(p, clock, lat, 1000)
		share = float64(got[slow]) / 1000
		require.Less(t, clock.Now().Sub(start), 30*time.Second, "no recovery; share %.3f", share)
	}
	t.Logf("fast again: back to %.1f%% after %v (decay 1s)", 100*share, clock.Now().Sub(start).Round(time.Millisecond))
}

// Every instance keeps a call in flight for long (a stream each), and one
// of them was slow: it is still measured again, through a probe once its
// latency is a tenth of the decay old, and its share comes back when it is
// fast again.
func TestP2CProbesInstancesWithLongCallsInFlight(t *testing.T) {
	p, clock, lat, slow := oneSlow()
	serve(p, clock, lat, 300) // learn

	streams := make(map[string]Picked)
	for range 10000 {
		pk, err := p.Pick()
		require.NoError(t, err)
		if _, ok := streams[pk.Instance.ID]; !ok {
			streams[pk.Instance.ID] = pk
			if len(streams) == 3 {
				break
			}
			continue
		}
		clock.Advance(lat[pk.Instance.ID])
		p.Observe(pk, lat[pk.Instance.ID])
		pk.Done(nil)
	}
	require.Len(t, streams, 3, "a stream on each instance")
	defer func() {
		for _, pk := range streams {
			pk.Done(nil)
		}
	}()

	lat[slow] = 500 * time.Microsecond
	start := clock.Now()
	for share := 0.0; share < 0.25; {
		got := serve(p, clock, lat, 1000)
		share = float64(got[slow]) / 1000
		require.Less(t, clock.Now().Sub(start), 30*time.Second, "not measured again with calls in flight; share %.3f", share)
	}
	t.Logf("fast again, streams on every instance: its share came back after %v (decay 1s)", clock.Now().Sub(start).Round(time.Millisecond))
}

// Without Observe, P2C weighs calls in flight alone, as before.
func TestP2CWithoutLatencyIsInFlight(t *testing.T) {
	src := newStatic(nInstances(2)...)
	p := must(NewP2C(src))
	held, err := p.Pick()
	require.NoError(t, err)
	for range 100 {
		pk, err := p.Pick()
		require.NoError(t, err)
		assert.NotEqual(t, held.Instance.ID, pk.Instance.ID, "picked the instance with a call in flight")
		pk.Done(nil)
	}
	held.Done(nil)
}

func TestP2CLatencyDecayOption(t *testing.T) {
	src := newStatic(nInstances(2)...)
	_, err := NewP2C(src, WithLatencyDecay(-time.Second))
	assert.ErrorIs(t, err, roster.ErrInvalidOption)
	assert.ErrorContains(t, err, "WithLatencyDecay(-1s)")
	p := must(NewP2C(src, WithLatencyDecay(0)))
	assert.Equal(t, int64(DefaultLatencyDecay), p.decay)
	// Other pickers take it and ignore it.
	_, err = NewWeighted(src, WithLatencyDecay(time.Second))
	assert.NoError(t, err)
}

// Observe ignores zero picks and picks of other pickers; the latencies of
// instances that leave are forgotten.
func TestP2CObserveEdges(t *testing.T) {
	src := newStatic(nInstances(3)...)
	p, q := must(NewP2C(src)), must(NewP2C(src))
	p.Observe(Picked{}, time.Second)
	pk, err := q.Pick()
	require.NoError(t, err)
	p.Observe(pk, time.Second)
	pk.Done(nil)
	assert.False(t, p.observed.Load())

	for range 30 {
		pk, err := p.Pick()
		require.NoError(t, err)
		p.Observe(pk, -time.Second) // clamped to 0
		pk.Done(nil)
	}
	assert.Len(t, p.ids, 3)

	src.edit(nil, src.Snapshot().At(0).ID)
	pk, err = p.Pick() // brings the state up to date
	require.NoError(t, err)
	p.Observe(pk, time.Millisecond) // prunes
	pk.Done(nil)
	assert.Len(t, p.ids, 2)
	n := 0
	p.lat.Range(func(any, any) bool { n++; return true })
	assert.Equal(t, 2, n)
}

// Pick, Observe and Done allocate nothing once each instance has its
// latency.
func TestP2CLatencyAllocs(t *testing.T) {
	src := newStatic(nInstances(10)...)
	p := must(NewP2C(src))
	for range 200 {
		pk, _ := p.Pick()
		p.Observe(pk, time.Millisecond)
		pk.Done(nil)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		pk, _ := p.Pick()
		p.Observe(pk, time.Millisecond)
		pk.Done(nil)
	})
	assert.Zero(t, allocs)
}
