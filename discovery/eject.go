package discovery

// Outlier ejection: a passive health check driven by the outcomes callers
// report through Picked.Done. It needs no probes and no goroutine: an
// ejected entry carries the time its ejection ends, and picks read the
// clock only when that is set.

// usable reports whether e may be picked now, ending an expired ejection.
// Small enough to be inlined into every pick; expired is the rest.
func (b *base) usable(e *entry) bool {
	u := e.until.Load()
	return u == 0 || b.expired(e, u)
}

// expired is usable for an entry ejected until u: whether that time has
// passed, ending the ejection if so.
func (b *base) expired(e *entry, u int64) bool {
	if b.nowNano() < u {
		return false
	}
	if e.until.CompareAndSwap(u, 0) {
		b.tel.restored(e)
	}
	return true
}

// failed counts a failed call and ejects the instance once it has failed
// cfg.ejectAfter times in a row, unless no other usable instance is left.
func (b *base) failed(e *entry) {
	n := int32(b.cfg.ejectAfter)
	if n <= 0 || e.until.Load() != 0 && !b.usable(e) {
		// Disabled, or already ejected: calls that were in flight when
		// it was ejected do not count towards the next ejection.
		return
	}
	if e.fails.Add(1) < n {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.fails.Load() < n || !b.usable(e) || b.byID[e.id] != e {
		return // another failure got here first, or it is gone
	}
	// Forget ejections that have ended, then count who is left.
	for o := range b.ejected {
		if b.usable(o) {
			delete(b.ejected, o)
			o.ejected = false
		}
	}
	if len(b.byID)-len(b.ejected) <= 1 {
		// e is the last usable instance: keep it. Its failure count stays
		// at the threshold, so it is ejected on its next failure once
		// another instance is usable again.
		return
	}
	e.until.Store(max(b.nowNano()+int64(b.cfg.ejectFor), 1))
	e.fails.Store(0)
	e.ejected = true
	b.ejected[e] = struct{}{}
	b.tel.ejected(e, b.cfg.ejectAfter, b.cfg.ejectFor)
}
