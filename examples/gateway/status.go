package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

//go:embed status.html
var statusPage []byte

// statusInterval is how often the live page is refreshed when nothing
// changed, so cache ages tick and a lost etcd shows.
const statusInterval = time.Second

type status struct {
	Etcd      etcdStatus      `json:"etcd"`
	Services  []serviceStatus `json:"services"`
	Elections []electionState `json:"elections"`
}

type etcdStatus struct {
	Endpoints []string `json:"endpoints"`
	Healthy   bool     `json:"healthy"`
	Error     string   `json:"error,omitempty"`
}

type serviceStatus struct {
	Name      string           `json:"name"`
	Revision  int64            `json:"revision"`
	Synced    bool             `json:"synced"`
	CacheAge  string           `json:"cache_age"`
	Skipped   int              `json:"skipped"`
	Instances []instanceStatus `json:"instances"`
}

type instanceStatus struct {
	ID       string            `json:"id"`
	Addr     string            `json:"addr"`
	Status   string            `json:"status"`
	Weight   int               `json:"weight"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Ejected  bool              `json:"ejected"`
	Inflight int64             `json:"inflight"`
}

type electionState struct {
	Name     string `json:"name"`
	Prefix   string `json:"prefix"`
	Leader   string `json:"leader,omitempty"`
	Revision int64  `json:"revision,omitempty"`
}

// statusSource gathers what the status endpoints show.
type statusSource struct {
	cli       *clientv3.Client
	rt        *router
	elections func(ctx context.Context, services []string) []electionState
}

func (s *statusSource) etcdHealth(ctx context.Context) etcdStatus {
	st := etcdStatus{Endpoints: s.cli.Endpoints()}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// A linearizable read needs a leader and a quorum: the strongest cheap
	// proof that etcd serves.
	if _, err := s.cli.Get(ctx, "health", clientv3.WithCountOnly()); err != nil {
		st.Error = err.Error()
		return st
	}
	st.Healthy = true
	return st
}

func (s *statusSource) collect(ctx context.Context) status {
	routes := s.rt.services()
	names := sortedNames(routes)
	st := status{Etcd: s.etcdHealth(ctx), Services: []serviceStatus{}}
	for _, name := range names {
		st.Services = append(st.Services, serviceOf(name, routes[name]))
	}
	st.Elections = s.elections(ctx, names)
	return st
}

func serviceOf(name string, r *route) serviceStatus {
	snap := r.cache.Snapshot()
	ss := serviceStatus{
		Name:      name,
		Revision:  snap.Revision,
		Synced:    snap.Synced(),
		CacheAge:  snap.Age().Round(time.Millisecond).String(),
		Skipped:   snap.Skipped,
		Instances: []instanceStatus{},
	}
	ej, _ := r.picker.(interface{ Ejected(string) bool })
	inf, _ := r.picker.(interface{ Inflight(string) int64 })
	for _, in := range snap.Instances {
		is := instanceStatus{
			ID: in.ID, Addr: in.Addr, Status: string(in.Status),
			Weight: in.EffectiveWeight(), Metadata: in.Metadata,
		}
		if is.Status == "" {
			is.Status = "serving"
		}
		if ej != nil {
			is.Ejected = ej.Ejected(in.ID)
		}
		if inf != nil {
			is.Inflight = inf.Inflight(in.ID)
		}
		ss.Instances = append(ss.Instances, is)
	}
	return ss
}

func (s *statusSource) serveJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s.collect(r.Context()))
}

func (s *statusSource) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(statusPage)
}

// serveEvents streams the status as server-sent events: at once, then
// whenever a service's instances change, and at least every statusInterval.
func (s *statusSource) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	changed := make(chan struct{}, 1)
	stop := s.watchChanges(r.Context(), changed)
	defer stop()
	tick := time.NewTicker(statusInterval)
	defer tick.Stop()
	for {
		b, err := json.Marshal(s.collect(r.Context()))
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// watchChanges signals changed (without blocking) whenever a routed
// service's instances change. Services routed later are picked up by the
// periodic refresh. The returned func stops it and waits.
func (s *statusSource) watchChanges(ctx context.Context, changed chan<- struct{}) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range s.rt.services() {
		sub := r.cache.Subscribe()
		wg.Go(func() {
			defer sub.Close()
			for {
				if _, err := sub.Next(ctx); err != nil {
					return
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// serveHealth answers 200 when etcd serves and every routed cache has
// synced, 503 with the reason otherwise.
func (s *statusSource) serveHealth(w http.ResponseWriter, r *http.Request) {
	e := s.etcdHealth(r.Context())
	if !e.Healthy {
		http.Error(w, "etcd unreachable: "+e.Error, http.StatusServiceUnavailable)
		return
	}
	for name, rte := range s.rt.services() {
		if !rte.cache.Snapshot().Synced() {
			http.Error(w, "cache of "+name+" not synced", http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}
