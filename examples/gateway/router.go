package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/rosterkit/roster/discovery"
)

// route is what the gateway keeps per service: the cache that follows the
// service's instances and the picker that spreads calls over them.
type route struct {
	pinned bool // opened because the service is registered, not by a request
	cache  *discovery.Cache
	pick   func(r *http.Request) (discovery.Picked, error)
	picker any // for the status page: ejection state, in-flight counts
}

// router opens a cache and picker the first time a service is asked for
// and keeps them until Close: a gateway serves a small set of services.
type router struct {
	d      *discovery.Discoverer
	picker string

	mu     sync.Mutex
	routes map[string]*route
}

const (
	ejectAfter    = 3
	ejectCooldown = 5 * time.Second
)

func newRouter(d *discovery.Discoverer, picker string) (*router, error) {
	switch picker {
	case "round-robin", "weighted", "p2c", "hash", "random":
	default:
		return nil, fmt.Errorf("unknown picker %q: want round-robin, weighted, p2c, hash or random", picker)
	}
	return &router{d: d, picker: picker, routes: make(map[string]*route)}, nil
}

// firstSync bounds how long a request for a service not seen yet waits for
// its cache to load.
const firstSync = 3 * time.Second

// pin opens the route of a service known to be registered and keeps it.
func (rt *router) pin(service string) {
	if r, err := rt.open(service); err == nil {
		rt.mu.Lock()
		r.pinned = true
		rt.mu.Unlock()
	}
}

// forRequest returns the route of a service, synced. A route opened for a
// service nobody registered is closed again, so that requests for made-up
// names cannot make the gateway follow ever more services.
func (rt *router) forRequest(ctx context.Context, service string) (*route, error) {
	r, err := rt.open(service)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, firstSync)
	defer cancel()
	if err := r.cache.WaitSynced(ctx); err != nil {
		return nil, fmt.Errorf("service %q: %w", service, err)
	}
	if len(r.cache.Snapshot().Instances) == 0 {
		rt.dropUnpinned(service, r)
	}
	return r, nil
}

func (rt *router) dropUnpinned(service string, r *route) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !r.pinned && rt.routes[service] == r {
		delete(rt.routes, service)
		r.cache.Close()
	}
}

func (rt *router) open(service string) (*route, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if r, ok := rt.routes[service]; ok {
		return r, nil
	}
	c, err := rt.d.Watch(service)
	if err != nil {
		return nil, err
	}
	r := &route{cache: c}
	opt := discovery.WithEjection(ejectAfter, ejectCooldown)
	switch rt.picker {
	case "round-robin":
		p := discovery.NewRoundRobin(c, opt)
		r.pick, r.picker = func(*http.Request) (discovery.Picked, error) { return p.Pick() }, p
	case "random":
		p := discovery.NewRandom(c, opt)
		r.pick, r.picker = func(*http.Request) (discovery.Picked, error) { return p.Pick() }, p
	case "weighted":
		p := discovery.NewWeighted(c, opt)
		r.pick, r.picker = func(*http.Request) (discovery.Picked, error) { return p.Pick() }, p
	case "p2c":
		p := discovery.NewP2C(c, opt)
		r.pick, r.picker = func(*http.Request) (discovery.Picked, error) { return p.Pick() }, p
	case "hash":
		p := discovery.NewConsistentHash(c, opt)
		r.pick, r.picker = func(req *http.Request) (discovery.Picked, error) { return p.Pick(stickyKey(req)) }, p
	}
	rt.routes[service] = r
	return r, nil
}

// stickyKey is what consistent hashing routes on: an explicit header, or
// else the client's address, so one client keeps reaching one instance.
func stickyKey(r *http.Request) string {
	if k := r.Header.Get("X-Roster-Key"); k != "" {
		return k
	}
	return r.RemoteAddr
}

// services lists the services with an open route, sorted.
func (rt *router) services() map[string]*route {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make(map[string]*route, len(rt.routes))
	for k, v := range rt.routes {
		out[k] = v
	}
	return out
}

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
	defer rt.mu.Unlock()
	for _, r := range rt.routes {
		r.cache.Close()
	}
	clear(rt.routes)
}
