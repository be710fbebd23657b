package main

import (
	"sync"
	"time"
)

// timelineLen is how many events the timeline keeps.
const timelineLen = 200

// event is one thing that happened, in plain words.
type event struct {
	Time time.Time `json:"time"`
	// Kind is joined, draining, serving (again), left (after draining),
	// lost (left while serving), lease (registered again by the same
	// process: its lease was lost and restored), ejected, restored (after
	// an ejection), leader, drain or undrain (an operator's request).
	Kind     string `json:"kind"`
	Service  string `json:"service,omitempty"`
	Instance string `json:"instance,omitempty"`
	Election string `json:"election,omitempty"`
	Text     string `json:"text"`
	// Seq numbers events, so that a page can tell which ones it showed.
	Seq uint64 `json:"seq"`
}

// timeline keeps the last events, and signals whoever waits for news.
type timeline struct {
	mu      sync.Mutex
	events  []event // ring
	next    int
	seq     uint64
	changed chan struct{} // closed and replaced on every event
}

func newTimeline() *timeline {
	return &timeline{events: make([]event, 0, timelineLen), changed: make(chan struct{})}
}

func (t *timeline) add(e event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	e.Seq = t.seq
	if len(t.events) < timelineLen {
		t.events = append(t.events, e)
	} else {
		t.events[t.next] = e
		t.next = (t.next + 1) % timelineLen
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// list returns the events, newest first.
func (t *timeline) list() []event {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]event, 0, len(t.events))
	for i := len(t.events) - 1; i >= 0; i-- {
		out = append(out, t.events[(t.next+i)%len(t.events)])
	}
	return out
}

// wait returns a channel closed at the next event.
func (t *timeline) wait() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}
