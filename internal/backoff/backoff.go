// Package backoff paces retry loops: every loop that reconnects, re-grants
// a lease or re-campaigns waits Backoff.Next between attempts, so a flaky
// or overloaded etcd is not hammered by all clients at once.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Defaults for the zero fields of a Backoff.
const (
	// DefaultMin is the first delay when Min is not set.
	DefaultMin = 100 * time.Millisecond
	// DefaultMax caps delays when Max is not set.
	DefaultMax = 10 * time.Second
	// DefaultFactor is the growth per attempt when Factor is not set.
	DefaultFactor = 2.0
	// DefaultJitter is the jitter fraction when Jitter is not set.
	DefaultJitter = 0.2
)

// Backoff computes jittered exponential delays. The zero value is ready to
// use with the defaults above.
//
// A Backoff is not safe for concurrent use: each retry loop owns its own.
type Backoff struct {
	// Min is the base of the first delay; 0 or less means DefaultMin.
	Min time.Duration
	// Max caps every delay, jitter included; 0 or less means DefaultMax.
	// A Max below Min is raised to Min.
	Max time.Duration
	// Factor multiplies the base delay after each attempt; values below 1
	// (including 0) mean DefaultFactor. 1 gives constant delays.
	Factor float64
	// Jitter is the fraction, in 0..1, by which each delay is randomly
	// shortened, so clients that failed together do not retry together.
	// 0 means DefaultJitter; a negative value disables jitter. Values
	// above 1 count as 1.
	Jitter float64

	// base is the unjittered delay Next returned last; 0 before the first
	// call and after Reset.
	base time.Duration
}

// Next returns how long to wait before the next attempt. The unjittered
// delay starts at Min and is multiplied by Factor on every call up to Max;
// the returned delay is that value shortened by a random fraction of up to
// Jitter, so it lies in [(1-Jitter)·base, base] and never exceeds Max.
func (b *Backoff) Next() time.Duration {
	minD, maxD := b.bounds()
	if b.base == 0 {
		b.base = minD
	} else if next := float64(b.base) * b.factor(); next >= float64(maxD) {
		// Compared as float64 first: the product can overflow Duration.
		b.base = maxD
	} else {
		b.base = time.Duration(next)
	}
	// Keeps the sequence in bounds if Min or Max changed between calls.
	b.base = min(max(b.base, minD), maxD)
	return b.base - time.Duration(float64(b.base)*b.jitter()*rand.Float64())
}

// Reset starts the sequence over at Min; call it after a success so the
// next failure is retried quickly.
func (b *Backoff) Reset() {
	b.base = 0
}

// bounds returns Min and Max with defaults applied.
func (b *Backoff) bounds() (minD, maxD time.Duration) {
	minD, maxD = b.Min, b.Max
	if minD <= 0 {
		minD = DefaultMin
	}
	if maxD <= 0 {
		maxD = DefaultMax
	}
	return minD, max(maxD, minD)
}

// factor returns Factor with its default applied.
func (b *Backoff) factor() float64 {
	if b.Factor < 1 {
		return DefaultFactor
	}
	return b.Factor
}

// jitter returns Jitter with its default applied, in 0..1.
func (b *Backoff) jitter() float64 {
	switch {
	case b.Jitter == 0:
		return DefaultJitter
	case b.Jitter < 0:
		return 0
	default:
		return min(b.Jitter, 1)
	}
}
