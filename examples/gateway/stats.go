package main

import (
	"go.opentelemetry.io/otel/metric"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// The status page's charts: every slot seconds the sampler closes a slot of
// each counter, keeping the last slots of them.
const (
	slot  = 2 * time.Second
	slots = 150 // five minutes
)

// Latency buckets: four per power of two of nanoseconds from 1 µs (2^10 ns)
// up, so a quantile read from them is within 19% of the true one; the hot
// path finds its bucket with two shifts.
const (
	minPow   = 10
	subBits  = 2
	nBuckets = 27 * (1 << subBits) // up to 2^37 ns, about 137 s
)

func bucketOf(d time.Duration) int {
	ns := uint64(max(d, 0))
	l := bits.Len64(ns)
	if l <= minPow {
		return 0
	}
	sub := int(ns>>(l-1-subBits)) & (1<<subBits - 1)
	return min((l-1-minPow)*(1<<subBits)+sub+1, nBuckets-1)
}

// bucketUpper is the upper bound of bucket i.
func bucketUpper(i int) time.Duration {
	if i == 0 {
		return 1 << minPow
	}
	i--
	pow := minPow + i>>subBits
	sub := i & (1<<subBits - 1)
	return time.Duration((float64(int(1)<<subBits+sub+1) / float64(int(1)<<subBits)) * math.Exp2(float64(pow)))
}

// counters count calls and their latencies, written lock-free by the proxy.
type counters struct {
	calls, errors, inflight atomic.Int64
	hist                    [nBuckets]atomic.Uint64
}

func (c *counters) record(d time.Duration, failed bool) {
	c.calls.Add(1)
	if failed {
		c.errors.Add(1)
	}
	if d >= 0 {
		c.hist[bucketOf(d)].Add(1)
	}
}

// series is what the charts draw: one value per closed slot, oldest first,
// kept in a ring.
type series struct {
	next                     int
	full                     bool
	rate, errors, p50s, p99s [slots]float32
	lastCalls, lastErrors    int64
	lastHist                 [nBuckets]uint64
	active                   bool // had a call in the ring's span
	idle                     int  // slots since the last call
}

// sample closes a slot of c into s.
func (s *series) sample(c *counters, secs float64) {
	calls, errs := c.calls.Load(), c.errors.Load()
	var delta [nBuckets]uint64
	var n uint64
	for i := range delta {
		v := c.hist[i].Load()
		delta[i] = v - s.lastHist[i]
		s.lastHist[i] = v
		n += delta[i]
	}
	dc, de := calls-s.lastCalls, errs-s.lastErrors
	s.lastCalls, s.lastErrors = calls, errs
	i := s.next
	s.rate[i] = float32(float64(dc) / secs)
	s.errors[i] = float32(float64(de) / secs)
	s.p50s[i] = float32(quantile(&delta, n, 0.50).Seconds() * 1000)
	s.p99s[i] = float32(quantile(&delta, n, 0.99).Seconds() * 1000)
	s.next = (i + 1) % slots
	if s.next == 0 {
		s.full = true
	}
	if dc > 0 {
		s.active, s.idle = true, 0
	} else if s.idle++; s.idle >= slots {
		s.active = false
	}
}

// quantile reads quantile q from bucket counts, interpolating within the
// bucket; 0 when there is no sample.
func quantile(h *[nBuckets]uint64, n uint64, q float64) time.Duration {
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var seen float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := time.Duration(0)
			if i > 0 {
				lo = bucketUpper(i - 1)
			}
			hi := bucketUpper(i)
			frac := (rank - seen) / float64(c)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		seen += float64(c)
	}
	return bucketUpper(nBuckets - 1)
}

// chart is a series as the status JSON carries it.
type chart struct {
	Rate   []float32 `json:"rate"`   // requests per second
	Errors []float32 `json:"errors"` // failed requests per second
	P50    []float32 `json:"p50_ms"` // median latency, ms
	P99    []float32 `json:"p99_ms"` // 99th percentile latency, ms
	Slot   float64   `json:"slot_s"` // seconds per point
	Points int       `json:"points"` // how many points each list has
}

// chart copies the ring in time order; nil when nothing was called in its
// span, so that idle instances cost the JSON nothing.
func (s *series) chart() *chart {
	if !s.active {
		return nil
	}
	start, n := 0, s.next
	if s.full {
		start, n = s.next, slots
	}
	c := &chart{Slot: slot.Seconds(), Points: n,
		Rate: make([]float32, n), Errors: make([]float32, n), P50: make([]float32, n), P99: make([]float32, n)}
	for k := range n {
		j := (start + k) % slots
		c.Rate[k], c.Errors[k], c.P50[k], c.P99[k] = s.rate[j], s.errors[j], s.p50s[j], s.p99s[j]
	}
	return c
}

// last returns the values of the last closed slot.
func (s *series) last() (rate, errors, p50, p99 float32) {
	if s.next == 0 && !s.full {
		return 0, 0, 0, 0
	}
	j := (s.next + slots - 1) % slots
	return s.rate[j], s.errors[j], s.p50s[j], s.p99s[j]
}

// stats are the request statistics of one service: its own (what clients
// got) and its instances' (each attempt, retries included).
type stats struct {
	service string
	calls   counters
	chart   series // guarded by mu

	// attribute sets of its metrics (see metrics.go)
	attrs                         metric.ObserveOption
	attrsRecord                   metric.RecordOption
	retryNotSent, retryIdempotent metric.AddOption

	mu      sync.Mutex      // guards the charts and serving
	serving map[string]bool // instance ID → serving, as of the last change
	byID    sync.Map        // instance ID → *instanceStats; read lock-free per request
}

type instanceStats struct {
	id    string
	calls counters
	chart series // guarded by stats.mu
	// ejected is what the sampler last saw, for the timeline; lastErr why
	// the last failed attempt failed.
	ejected atomic.Bool
	lastErr atomic.Pointer[string]

	attrs       metric.ObserveOption
	attrsRecord metric.RecordOption
}

// failed records an attempt that got no response.
func (is *instanceStats) failed(err error) {
	msg := err.Error()
	is.lastErr.Store(&msg)
	is.calls.record(-1, true)
}

// markEjected records whether the instance is ejected, reporting whether
// that changed.
func (is *instanceStats) markEjected(on bool) bool {
	return is.ejected.CompareAndSwap(!on, on)
}

func newStats(service string) *stats {
	s := &stats{service: service}
	serviceAttrs(s)
	return s
}

// instance returns the statistics of one instance, made on first use.
func (s *stats) instance(id string) *instanceStats {
	if v, ok := s.byID.Load(id); ok {
		return v.(*instanceStats)
	}
	is := &instanceStats{id: id}
	instanceAttrs(s.service, is)
	v, _ := s.byID.LoadOrStore(id, is)
	return v.(*instanceStats)
}

// lookup returns the statistics of one instance, nil if it had no call.
func (s *stats) lookup(id string) *instanceStats {
	if v, ok := s.byID.Load(id); ok {
		return v.(*instanceStats)
	}
	return nil
}

// each calls f for every instance with statistics.
func (s *stats) each(f func(*instanceStats)) {
	s.byID.Range(func(_, v any) bool { f(v.(*instanceStats)); return true })
}

// forget drops the statistics of instances that are gone and idle.
func (s *stats) forget(present func(id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.each(func(is *instanceStats) {
		if !present(is.id) && !is.chart.active && is.calls.inflight.Load() == 0 {
			s.byID.Delete(is.id)
		}
	})
}

// sample closes a slot of the service and of each of its instances.
func (s *stats) sample(secs float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chart.sample(&s.calls, secs)
	s.each(func(is *instanceStats) { is.chart.sample(&is.calls, secs) })
}
