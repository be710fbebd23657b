package discovery

// Outlier ejection: a passive health check driven by the outcomes callers
// report through Picked.Done. It needs no probes and no extra goroutine:
// an ejected instance carries the time its ejection ends, and picks
// compare against it only when it is set, so the clock is not read on
// the common path.

// usable reports whether h may be picked now, ending an expired ejection.
func (b *base) usable(h *health) bool {
	u := h.until.Load()
	if u == 0 {
		return true
	}
	if b.nowNano() >= u {
		h.until.CompareAndSwap(u, 0)
		return true
	}
	return false
}

// failed counts a failed call and ejects the instance once it has failed
// cfg.ejectAfter times in a row, unless no other usable instance is left.
func (b *base) failed(h *health) {
	n := int32(b.cfg.ejectAfter)
	if n <= 0 || h.until.Load() != 0 && !b.usable(h) {
		// Disabled, or already ejected: calls that were in flight when
		// it was ejected do not count towards the next ejection.
		return
	}
	if h.fails.Add(1) < n {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if h.fails.Load() < n || !b.usable(h) {
		return // another failure got here first
	}
	t := b.tab.Load()
	if t == nil {
		return
	}
	for i := range t.ents {
		if e := &t.ents[i]; e.h != h && b.usable(e.h) {
			until := b.nowNano() + int64(b.cfg.ejectFor)
			h.until.Store(max(until, 1))
			h.fails.Store(0)
			return
		}
	}
	// h is the last usable instance: keep it. Its failure count stays at
	// the threshold, so it is ejected on its next failure once another
	// instance is usable again.
}
