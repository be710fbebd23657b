package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
)

// route is what the gateway keeps per service: the cache that follows the
// service's instances, the picker that spreads calls over them and the
// calls' statistics.
type route struct {
	service string
	pinned  atomic.Bool  // the service is listed (has instances), not only asked for
	keep    atomic.Int64 // unix ns until which an unlisted route is kept
	cache   *discovery.Cache
	pick    func(r *http.Request) (discovery.Picked, error)
	picker  interface {
		Ejected(id string) bool
		Inflight(id string) int64
	}
	stats *stats
	tl    *timeline
	stop  context.CancelFunc // ends the route's follower of changes
	done  chan struct{}
	// gone remembers instances that left, to tell a registration restored
	// by the same process from a new one; owned by followChanges.
	gone map[string]goneInstance
}

// goneMemory is how long a departed instance is remembered.
const goneMemory = 2 * time.Minute

type goneInstance struct {
	pid string
	at  time.Time
}

// noteEjection puts an instance's ejection on the timeline the first time
// the picker is seen ejecting it.
func (r *route) noteEjection(is *instanceStats) {
	if !r.picker.Ejected(is.id) || !is.markEjected(true) {
		return
	}
	why := "failed calls"
	if e := is.lastErr.Load(); e != nil {
		why = *e
	}
	r.tl.add(event{Kind: "ejected", Service: r.service, Instance: is.id,
		Text: fmt.Sprintf("%s ejected after %d failed calls in a row: %s", is.id, ejectAfter, why)})
}

// router holds the routes. Requests read the route map with one atomic
// load; opening and closing routes copies it.
type router struct {
	d      *discovery.Discoverer
	picker string
	tl     *timeline
	log    *slog.Logger

	mu     sync.Mutex // serializes writers of routes
	routes atomic.Pointer[map[string]*route]
}

const (
	ejectAfter    = 3
	ejectCooldown = 5 * time.Second
)

func newRouter(d *discovery.Discoverer, picker string, tl *timeline, log *slog.Logger) (*router, error) {
	switch picker {
	case "round-robin", "weighted", "p2c", "hash", "random":
	default:
		return nil, fmt.Errorf("unknown picker %q: want round-robin, weighted, p2c, hash or random", picker)
	}
	rt := &router{d: d, picker: picker, tl: tl, log: log}
	rt.routes.Store(&map[string]*route{})
	return rt, nil
}

// firstSync bounds how long a request for a service not seen yet waits for
// its cache to load.
const firstSync = 3 * time.Second

// follow opens a route for every listed service and closes it when the
// service is no longer listed, until ctx ends.
func (rt *router) follow(ctx context.Context, set *discovery.ServiceSet) {
	initial := true
	for ch := range set.Changes(ctx) {
		for _, name := range ch.Added {
			// A service listed after the first list is new: its first
			// instances joined now.
			if _, err := rt.open(name, true, !initial); err != nil {
				rt.log.Warn("follow service", "service", name, "err", err)
			}
		}
		for _, name := range ch.Removed {
			rt.unlist(name)
		}
		initial = false
	}
}

// forRequest returns the route of a service, synced. A route opened for a
// service nobody registered is closed again, so that requests for made-up
// names cannot make the gateway follow ever more services.
func (rt *router) forRequest(ctx context.Context, service string) (*route, error) {
	if r, ok := (*rt.routes.Load())[service]; ok && r.cache.Snapshot().Synced() {
		return r, nil
	}
	r, err := rt.open(service, false, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, firstSync)
	defer cancel()
	if err := r.cache.WaitSynced(ctx); err != nil {
		return nil, fmt.Errorf("service %q: %w", service, err)
	}
	if r.cache.Snapshot().Len() == 0 && r.idle(time.Now()) {
		rt.closeRoute(service, r)
	}
	return r, nil
}

func (rt *router) open(service string, pin, announce bool) (*route, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	cur := *rt.routes.Load()
	if r, ok := cur[service]; ok {
		if pin {
			r.pinned.Store(true)
		}
		return r, nil
	}
	c, err := rt.d.Watch(service)
	if err != nil {
		return nil, err
	}
	r := &route{service: service, cache: c, stats: newStats(service), tl: rt.tl, gone: map[string]goneInstance{}}
	r.pinned.Store(pin)
	if err := r.newPicker(rt.picker); err != nil {
		c.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan struct{})
	go r.followChanges(ctx, announce)
	rt.store(cur, service, r)
	return r, nil
}

// store publishes a copy of cur with service set to r (deleted if nil).
// rt.mu must be held.
func (rt *router) store(cur map[string]*route, service string, r *route) {
	next := make(map[string]*route, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	if r == nil {
		delete(next, service)
	} else {
		next[service] = r
	}
	rt.routes.Store(&next)
}

// unlistedGrace is how long the route of a service that lost its last
// instance is kept: the page shows it with no instance meanwhile, and the
// route's timeline sees its instances come back (a single worker whose
// lease was lost and restored, a restart).
const unlistedGrace = time.Minute

// unlist marks the route of a service that is no longer listed, to be
// closed after unlistedGrace unless it is listed again.
func (rt *router) unlist(service string) {
	if r, ok := (*rt.routes.Load())[service]; ok {
		r.keep.Store(time.Now().Add(unlistedGrace).UnixNano())
		r.pinned.Store(false)
	}
}

// idle reports whether r is neither listed nor within its grace.
func (r *route) idle(now time.Time) bool {
	return !r.pinned.Load() && now.UnixNano() > r.keep.Load()
}

// sweep closes the routes of services unlisted for longer than their
// grace, or asked for and never registered.
func (rt *router) sweep(now time.Time) {
	for name, r := range rt.services() {
		if r.idle(now) && r.cache.Snapshot().Len() == 0 {
			rt.closeRoute(name, r)
		}
	}
}

// closeRoute closes r if it is still the route of service and not pinned.
func (rt *router) closeRoute(service string, r *route) {
	rt.mu.Lock()
	cur := *rt.routes.Load()
	now, ok := cur[service]
	drop := ok && now == r && r.idle(time.Now())
	if drop {
		rt.store(cur, service, nil)
	}
	rt.mu.Unlock()
	if drop {
		now.shut()
	}
}

func (r *route) shut() {
	r.stop()
	<-r.done
	r.cache.Close()
}

// newPicker makes the route's picker, with passive ejection.
func (r *route) newPicker(kind string) error {
	opt := discovery.WithEjection(ejectAfter, ejectCooldown)
	var p discovery.Picker
	var err error
	switch kind {
	case "round-robin":
		p, err = discovery.NewRoundRobin(r.cache, opt)
	case "random":
		p, err = discovery.NewRandom(r.cache, opt)
	case "weighted":
		p, err = discovery.NewWeighted(r.cache, opt)
	case "p2c":
		p, err = discovery.NewP2C(r.cache, opt)
	case "hash":
		h, herr := discovery.NewConsistentHash(r.cache, opt)
		if herr != nil {
			return herr
		}
		var kp discovery.KeyedPicker = h
		r.pick, r.picker = func(req *http.Request) (discovery.Picked, error) { return kp.Pick(stickyKey(req)) }, h
		return nil
	}
	if err != nil {
		return err
	}
	r.pick = func(*http.Request) (discovery.Picked, error) { return p.Pick() }
	r.picker = p.(interface {
		Ejected(id string) bool
		Inflight(id string) int64
	})
	return nil
}

// stickyKey is what consistent hashing routes on: an explicit header, or
// else the client's address, so one client keeps reaching one instance.
func stickyKey(r *http.Request) string {
	if k := r.Header.Get("X-Roster-Key"); k != "" {
		return k
	}
	return r.RemoteAddr
}

// services returns the routes, by service.
func (rt *router) services() map[string]*route { return *rt.routes.Load() }

func sortedNames(m map[string]*route) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (rt *router) Close() {
	rt.mu.Lock()
	cur := *rt.routes.Load()
	rt.routes.Store(&map[string]*route{})
	rt.mu.Unlock()
	for _, r := range cur {
		r.shut()
	}
}

// followChanges puts the route's instances' comings and goings on the
// timeline: joined, draining, serving again, left.
func (r *route) followChanges(ctx context.Context, announce bool) {
	defer close(r.done)
	first := true
	for ch := range r.cache.Changes(ctx) {
		if first && !announce {
			first = false // the view as found: nothing happened
			r.setServing(ch.Snapshot)
			continue
		}
		first = false
		for _, in := range ch.Added {
			if gone, ok := r.gone[in.ID]; ok && gone.pid != "" && gone.pid == in.Metadata["pid"] && time.Since(gone.at) < goneMemory {
				r.tl.add(event{Kind: "lease", Service: r.service, Instance: in.ID,
					Text: fmt.Sprintf("%s is registered again by the same process (pid %s) after %v: its lease was lost and restored",
						in.ID, gone.pid, time.Since(gone.at).Round(time.Millisecond))})
			} else {
				r.tl.add(event{Kind: "joined", Service: r.service, Instance: in.ID,
					Text: fmt.Sprintf("%s joined %s at %s%s", in.ID, r.service, in.Addr, pidOf(in))})
			}
			delete(r.gone, in.ID)
			if !in.Serving() {
				r.tl.add(event{Kind: "draining", Service: r.service, Instance: in.ID,
					Text: fmt.Sprintf("%s is draining: no new requests go to it", in.ID)})
			}
		}
		for _, in := range ch.Updated {
			old, had := lookupPrev(r, in.ID)
			switch {
			case had && old == in.Serving():
			case in.Serving():
				r.tl.add(event{Kind: "serving", Service: r.service, Instance: in.ID,
					Text: fmt.Sprintf("%s is serving again", in.ID)})
			default:
				r.tl.add(event{Kind: "draining", Service: r.service, Instance: in.ID,
					Text: fmt.Sprintf("%s is draining: no new requests go to it", in.ID)})
			}
		}
		for _, in := range ch.Removed {
			r.gone[in.ID] = goneInstance{pid: in.Metadata["pid"], at: time.Now()}
			if in.Serving() {
				r.tl.add(event{Kind: "lost", Service: r.service, Instance: in.ID,
					Text: fmt.Sprintf("%s left without draining: its lease expired or its key was deleted (a crash, a kill -9, a partition)", in.ID)})
			} else {
				r.tl.add(event{Kind: "left", Service: r.service, Instance: in.ID,
					Text: fmt.Sprintf("%s left after draining (a graceful stop)", in.ID)})
			}
		}
		for id, g := range r.gone {
			if time.Since(g.at) > goneMemory {
				delete(r.gone, id)
			}
		}
		r.setServing(ch.Snapshot)
		r.stats.forget(func(id string) bool { _, ok := ch.Snapshot.Lookup(id); return ok })
	}
}

// lookupPrev reports whether the instance was serving in the view before
// the change, as the route last recorded it.
func lookupPrev(r *route, id string) (serving, ok bool) {
	r.stats.mu.Lock()
	defer r.stats.mu.Unlock()
	serving, ok = r.stats.serving[id]
	return
}

// setServing records which instances serve, to tell status changes apart
// from other updates.
func (r *route) setServing(s *discovery.Snapshot) {
	m := make(map[string]bool, s.Len())
	for in := range s.All() {
		m[in.ID] = in.Serving()
	}
	r.stats.mu.Lock()
	r.stats.serving = m
	r.stats.mu.Unlock()
}

func pidOf(in roster.Instance) string {
	if pid := in.Metadata["pid"]; pid != "" {
		return " (pid " + pid + ")"
	}
	return ""
}

// sample closes a chart slot of every route every slot, and puts the end of
// ejections on the timeline, until ctx ends.
func (rt *router) sample(ctx context.Context) {
	t := time.NewTicker(slot)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			secs := now.Sub(last).Seconds()
			last = now
			rt.sweep(now)
			for _, r := range rt.services() {
				r.stats.sample(secs)
				r.stats.each(func(is *instanceStats) {
					if is.ejected.Load() && !r.picker.Ejected(is.id) && is.markEjected(false) {
						r.tl.add(event{Kind: "restored", Service: r.service, Instance: is.id,
							Text: fmt.Sprintf("%s is back in rotation after its ejection cool-down", is.id)})
					}
				})
			}
		}
	}
}
