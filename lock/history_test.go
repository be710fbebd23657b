package lock_test

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// interval is one holding, from the moment the acquiring call returned to
// the moment the release was called: the span in which the holder believed
// it held. waitFrom is when it started asking.
type interval struct {
	who      string
	write    bool // exclusive: a mutex holder or an RW writer
	waitFrom time.Time
	from, to time.Time
}

// history records holdings from many goroutines and checks them afterwards.
// Times carry Go's monotonic clock reading, so comparisons are immune to
// wall-clock steps.
type history struct {
	mu  sync.Mutex
	all []interval
}

func (h *history) add(iv interval) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = append(h.all, iv)
}

func (h *history) intervals() []interval {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.all)
}

// maxConcurrent returns the largest number of holdings that overlapped at
// any instant, with one example of such an instant's holders.
func (h *history) maxConcurrent() (int, []interval) {
	all := h.intervals()
	type edge struct {
		at    time.Time
		start bool
		i     int
	}
	var edges []edge
	for i, iv := range all {
		edges = append(edges, edge{iv.from, true, i}, edge{iv.to, false, i})
	}
	// An end and a start at the same instant do not overlap: ends first.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		switch {
		case a.start == b.start:
			return 0
		case a.start:
			return 1
		default:
			return -1
		}
	})
	best := 0
	var example []interval
	open := map[int]bool{}
	for _, e := range edges {
		if !e.start {
			delete(open, e.i)
			continue
		}
		open[e.i] = true
		if len(open) > best {
			best, example = len(open), nil
			for i := range open {
				example = append(example, all[i])
			}
		}
	}
	return best, example
}

// exclusionViolation returns a description of a writer overlapping any
// other holding, or "" if there is none.
func (h *history) exclusionViolation() string {
	all := h.intervals()
	slices.SortFunc(all, func(a, b interval) int { return a.from.Compare(b.from) })
	for i, a := range all {
		for _, b := range all[i+1:] {
			if !b.from.Before(a.to) {
				break // sorted by start: no later one overlaps a
			}
			if a.write || b.write {
				return fmt.Sprintf("%s [%v, %v] overlaps %s [%v, %v]",
					a.who, a.from.Format(time.StampMicro), a.to.Format(time.StampMicro),
					b.who, b.from.Format(time.StampMicro), b.to.Format(time.StampMicro))
			}
		}
	}
	return ""
}

// handoffs returns, for every holding whose holder was already waiting when
// the previous holding ended, the time from that end (the release call) to
// this holding's start: how long the lock stood idle between two holders.
func (h *history) handoffs() []time.Duration {
	all := h.intervals()
	slices.SortFunc(all, func(a, b interval) int { return a.from.Compare(b.from) })
	var out []time.Duration
	for i := 1; i < len(all); i++ {
		prev, next := all[i-1], all[i]
		if next.waitFrom.Before(prev.to) {
			out = append(out, next.from.Sub(prev.to))
		}
	}
	return out
}

// percentile returns the p-th percentile (0 < p <= 100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
