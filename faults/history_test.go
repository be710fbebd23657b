package faults

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// outcome is what the caller of a fenced write was told.
type outcome int

const (
	// unknown: an error that does not say whether etcd applied the write
	// (a timeout, a broken connection). It may show up in etcd, or not.
	unknown outcome = iota
	// applied: etcd committed the write.
	applied
	// refused: the fence said no (ErrNotLeader, ErrNotHeld): either etcd
	// found the holder's key gone, or the holder knew it had lost and sent
	// nothing. The write must not be in etcd.
	refused
)

func (o outcome) String() string {
	return [...]string{"unknown", "applied", "refused"}[o]
}

// write is one fenced write: an entry put in a log under a holder's
// token, with the times its call was invoked and returned.
type write struct {
	id          int64 // unique in the run; the log key's suffix
	who         string
	token       int64 // the holder's fencing token
	invoke, ret time.Time
	outcome     outcome
	rev         int64 // the commit revision, when applied
	// oldest is the create revision of the oldest key under the lock's or
	// election's prefix, read in the write's own transaction, when
	// applied: whoever etcd deemed the holder at that revision.
	oldest int64
	phase  string // the fault under way
	err    error  // what the call returned
}

// term is one holding of a lock, or one leadership: from the return of
// the call that acquired it to the invocation of the call that released
// it. lost says whether the holder had seen it end (Done closed) by then:
// only a term whose holder saw no loss was certainly held throughout.
type term struct {
	who        string
	token      int64
	start, end time.Time
	lost       bool
	phase      string
}

// entry is a write as etcd kept it.
type entry struct {
	id    int64
	who   string
	token int64
	rev   int64 // mod revision
}

// history records the writes and terms of one lock or election, from any
// goroutine. Times carry Go's monotonic clock reading.
type history struct {
	name string

	mu     sync.Mutex
	writes []write
	terms  []term
	okBy   map[string]int // applied writes per holder
}

func newHistory(name string) *history {
	return &history{name: name, okBy: make(map[string]int)}
}

func (h *history) addWrite(w write) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes = append(h.writes, w)
	if w.outcome == applied {
		h.okBy[w.who]++
	}
}

func (h *history) addTerm(t term) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.terms = append(h.terms, t)
}

// applied returns the number of applied writes by holders other than
// except.
func (h *history) applied(except string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for who, c := range h.okBy {
		if who != except {
			n += c
		}
	}
	return n
}

func (h *history) snapshot() ([]write, []term) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.writes), slices.Clone(h.terms)
}

// counts summarises the history for the log.
func (h *history) counts() string {
	ws, ts := h.snapshot()
	var by [3]int
	for _, w := range ws {
		by[w.outcome]++
	}
	lost := 0
	for _, t := range ts {
		if t.lost {
			lost++
		}
	}
	return fmt.Sprintf("%s: %d terms (%d ended by a loss), %d writes: %d applied, %d refused, %d unknown",
		h.name, len(ts), lost, len(ws), by[applied], by[refused], by[unknown])
}

// maxViolations bounds how many violations a check reports.
const maxViolations = 10

type violations []error

func (v *violations) add(format string, args ...any) {
	if len(*v) < maxViolations {
		*v = append(*v, fmt.Errorf(format, args...))
	}
}

func (v violations) err() error { return errors.Join(v...) }

// checkTerms checks mutual exclusion in real time: no two terms whose
// holders did not observe a loss overlap, and their tokens never go back
// in the order the terms started. (Two terms in a row may share a token:
// a holder whose release failed finds its key still queued and takes it
// again, with its create revision, and nobody held in between.) Terms that ended by a loss are left out: their
// holder stopped acting when it learned, and what it wrote before is
// judged by checkLog.
func checkTerms(terms []term) error {
	var held []term
	for _, t := range terms {
		if !t.lost {
			held = append(held, t)
		}
	}
	if len(held) == 0 {
		return nil
	}
	slices.SortFunc(held, func(a, b term) int { return a.start.Compare(b.start) })
	latest := held[0]
	var v violations
	for i := 1; i < len(held); i++ {
		cur, before := held[i], held[i-1]
		// Sorted by start, terms are disjoint iff each starts after every
		// earlier one ended: latest is the earlier term that ended last.
		if cur.start.Before(latest.end) {
			v.add("overlap: %s (token %d, %s) held until %s, %s (token %d, %s) from %s",
				latest.who, latest.token, latest.phase, stamp(latest.end),
				cur.who, cur.token, cur.phase, stamp(cur.start))
		}
		if cur.token < before.token {
			v.add("token went back: %s got %d at %s after %s had %d",
				cur.who, cur.token, stamp(cur.start), before.who, before.token)
		}
		if cur.end.After(latest.end) {
			latest = cur
		}
	}
	return v.err()
}

// checkWithin checks that every applied write was invoked and returned
// within its holder's term: nobody wrote outside a holding it had been
// given.
func checkWithin(writes []write, terms []term) error {
	byToken := make(map[int64][]term, len(terms))
	for _, t := range terms {
		byToken[t.token] = append(byToken[t.token], t)
	}
	var v violations
	for _, w := range writes {
		if w.outcome != applied {
			continue
		}
		ts, ok := byToken[w.token]
		within := slices.ContainsFunc(ts, func(t term) bool {
			return t.who == w.who && !w.invoke.Before(t.start) && !w.ret.After(t.end)
		})
		switch {
		case !ok:
			v.add("write %d by %s under token %d, which no recorded term has", w.id, w.who, w.token)
		case ts[0].who != w.who:
			v.add("write %d by %s under %s's token %d", w.id, w.who, ts[0].who, w.token)
		case !within:
			v.add("write %d by %s [%s, %s] outside its terms with token %d",
				w.id, w.who, stamp(w.invoke), stamp(w.ret), w.token)
		}
	}
	return v.err()
}

// checkLog compares what the writers were told with what etcd kept:
//   - every applied write is in the log, at the revision it was told, and
//     saw its own key as the oldest in its transaction: etcd deemed it the
//     holder when it committed;
//   - no refused write is in the log, and nothing is that nobody wrote;
//   - in commit order the tokens never go backwards: once a newer holder
//     has written, no older one does again, so no two holders' writes
//     interleave. This covers writes whose outcome the caller never
//     learned, too.
func checkLog(writes []write, log []entry) error {
	byID := make(map[int64]write, len(writes))
	for _, w := range writes {
		byID[w.id] = w
	}
	log = slices.Clone(log)
	slices.SortFunc(log, func(a, b entry) int { return cmp.Compare(a.rev, b.rev) })
	var v violations
	inLog := make(map[int64]bool, len(log))
	var last entry
	for _, e := range log {
		inLog[e.id] = true
		w, ok := byID[e.id]
		switch {
		case !ok:
			v.add("log entry %d (%s, token %d) at revision %d was never written", e.id, e.who, e.token, e.rev)
			continue
		case w.who != e.who || w.token != e.token:
			v.add("log entry %d says %s/%d, the writer was %s/%d", e.id, e.who, e.token, w.who, w.token)
		case w.outcome == refused:
			v.add("write %d by %s (token %d) was refused, yet etcd applied it at revision %d", e.id, e.who, e.token, e.rev)
		case w.outcome == applied && w.rev != e.rev:
			v.add("write %d was told revision %d, etcd has it at %d", e.id, w.rev, e.rev)
		}
		if e.token < last.token {
			v.add("tokens went back: %s wrote under %d at revision %d after %s wrote under %d at revision %d",
				e.who, e.token, e.rev, last.who, last.token, last.rev)
		}
		if e.token >= last.token {
			last = e
		}
	}
	for _, w := range writes {
		if w.outcome != applied {
			continue
		}
		if !inLog[w.id] {
			v.add("write %d by %s (token %d) was acknowledged at revision %d and is gone", w.id, w.who, w.token, w.rev)
		}
		if w.oldest != w.token {
			v.add("write %d by %s (token %d) committed at revision %d while the oldest key had create revision %d",
				w.id, w.who, w.token, w.rev, w.oldest)
		}
	}
	return v.err()
}

func stamp(t time.Time) string { return t.Format("15:04:05.000000") }
