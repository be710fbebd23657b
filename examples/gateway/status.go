package main

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/discovery"
)

//go:embed ui
var ui embed.FS

// statusInterval is how often the live page is sent the status when
// nothing happened, so that charts move and a lost etcd shows.
const statusInterval = time.Second

// detailLimit is how many instances the status lists in full by default;
// beyond, it lists services only, and instances of the services asked for
// with ?detail=a,b (or all of them with ?detail=all).
const detailLimit = 300

// status is what /_roster/status answers and the page draws.
type status struct {
	Time      time.Time        `json:"time"`
	Gateway   gatewayInfo      `json:"gateway"`
	Etcd      etcdStatus       `json:"etcd"`
	Services  []serviceStatus  `json:"services"`
	Elections []electionStatus `json:"elections"`
	Locks     []lockStatus     `json:"locks"`
	Timeline  []event          `json:"timeline"`
}

type gatewayInfo struct {
	Name     string       `json:"name,omitempty"`
	Listen   string       `json:"listen"`
	Picker   string       `json:"picker"`
	PID      int          `json:"pid"`
	Started  time.Time    `json:"started"`
	UptimeS  float64      `json:"uptime_s"`
	Workers  []workerInfo `json:"workers"`
	Detail   string       `json:"detail"` // "all", or "some" when instances of some services are left out
	SlotS    float64      `json:"slot_s"` // seconds per chart point
	Services int          `json:"service_count"`
}

type etcdStatus struct {
	Endpoints []string     `json:"endpoints"`
	Embedded  bool         `json:"embedded"`
	Healthy   bool         `json:"healthy"`
	Error     string       `json:"error,omitempty"`
	Revision  int64        `json:"revision"`
	Members   []memberInfo `json:"members"`
	// ViewError says why the view of services, elections, locks or drains
	// may be out of date.
	ViewError string    `json:"view_error,omitempty"`
	Checked   time.Time `json:"checked"`
}

type memberInfo struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Clients []string `json:"client_urls"`
	Leader  bool     `json:"leader"`
}

type serviceStatus struct {
	Name     string  `json:"name"`
	Synced   bool    `json:"synced"`
	Revision int64   `json:"revision"`
	ViewAgeS float64 `json:"view_age_s"`
	Skipped  int     `json:"skipped"`
	Error    string  `json:"error,omitempty"`
	Count    int     `json:"instance_count"`
	Serving  int     `json:"serving"`
	Draining int     `json:"draining"`
	Ejected  int     `json:"ejected"`
	traffic
	Instances []instanceStatus `json:"instances"` // nil when left out (see gateway.detail)
}

// traffic is a service's or an instance's recent requests.
type traffic struct {
	Rate     float32 `json:"rate"`     // requests per second, last slot
	Errors   float32 `json:"errors"`   // failed requests per second, last slot
	P50      float32 `json:"p50_ms"`   // last slot
	P99      float32 `json:"p99_ms"`   // last slot
	Inflight int64   `json:"inflight"` // now
	Total    int64   `json:"requests"` // since the gateway started
	Failed   int64   `json:"failed"`   // since the gateway started
	Chart    *chart  `json:"chart"`    // nil when idle for the whole span
	LastErr  string  `json:"last_error,omitempty"`
}

type instanceStatus struct {
	ID       string            `json:"id"`
	Addr     string            `json:"addr"`
	Status   string            `json:"status"`           // serving, draining or ejected
	Reason   string            `json:"reason,omitempty"` // why draining or ejected
	Weight   int               `json:"weight"`
	Metadata map[string]string `json:"metadata,omitempty"`
	traffic
}

type electionStatus struct {
	Name        string      `json:"name"`
	Prefix      string      `json:"prefix"`
	Leader      string      `json:"leader"`
	Key         string      `json:"key"`
	Token       int64       `json:"token"`
	Lease       string      `json:"lease"`
	Since       time.Time   `json:"since"`
	TenureS     float64     `json:"tenure_s"`
	TenureKnown bool        `json:"tenure_known"` // false: it led already when the gateway started
	Candidates  []lockEntry `json:"candidates"`   // in line, the leader first
}

type lockStatus struct {
	Name    string      `json:"name"`
	Prefix  string      `json:"prefix"`
	Holder  *lockEntry  `json:"holder"`
	Waiters []lockEntry `json:"waiters"`
}

// lockEntry is one key in a recipe's queue, named after the election
// candidate on the same lease when there is one.
type lockEntry struct {
	Who   string    `json:"who"`
	Known bool      `json:"known"` // Who is a candidate's value, not just its lease
	Lease string    `json:"lease"`
	Token int64     `json:"token"`
	Key   string    `json:"key"`
	Since time.Time `json:"since"`
	ForS  float64   `json:"for_s"`
}

// statusSource gathers what the status endpoints show.
type statusSource struct {
	cli      *clientv3.Client
	ns       string
	rt       *router
	set      *discovery.ServiceSet
	coord    *coord
	tl       *timeline
	workers  *supervisor
	info     gatewayInfo
	embedded bool

	health atomic.Pointer[etcdStatus]
}

// pollHealth keeps the etcd part of the status current, once a second,
// until ctx ends: pages and health checks read it without asking etcd.
func (s *statusSource) pollHealth(ctx context.Context) {
	s.checkHealth(ctx)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.checkHealth(ctx)
		}
	}
}

func (s *statusSource) checkHealth(ctx context.Context) {
	st := etcdStatus{Endpoints: s.cli.Endpoints(), Embedded: s.embedded, Members: []memberInfo{}, Checked: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// A linearizable read needs a leader and a quorum: the strongest cheap
	// proof that etcd serves.
	resp, err := s.cli.Get(ctx, "\x00roster-gateway-health", clientv3.WithCountOnly())
	if err != nil {
		st.Error = err.Error()
	} else {
		st.Healthy, st.Revision = true, resp.Header.Revision
		leader := uint64(0)
		if len(st.Endpoints) > 0 {
			if sr, err := s.cli.Status(ctx, st.Endpoints[0]); err == nil {
				leader = sr.Leader
			}
		}
		if ml, err := s.cli.MemberList(ctx); err == nil {
			for _, m := range ml.Members {
				st.Members = append(st.Members, memberInfo{ID: fmt.Sprintf("%x", m.ID), Name: m.Name,
					Clients: m.ClientURLs, Leader: m.ID == leader})
			}
		}
	}
	s.health.Store(&st)
}

func (s *statusSource) etcd() etcdStatus {
	if st := s.health.Load(); st != nil {
		return *st
	}
	return etcdStatus{Endpoints: s.cli.Endpoints(), Members: []memberInfo{}}
}

// collect builds the status. detail names the services whose instances are
// listed: "all", "" (all unless there are more than detailLimit
// instances), or a comma-separated list.
func (s *statusSource) collect(detail string) status {
	now := time.Now()
	routes := s.rt.services()
	names := sortedNames(routes)
	info := s.info
	info.UptimeS = now.Sub(info.Started).Seconds()
	info.Workers = s.workers.list()
	info.SlotS = slot.Seconds()
	info.Services = len(names)
	st := status{Time: now, Gateway: info, Etcd: s.etcd(), Services: []serviceStatus{}}
	var viewErrs []string
	if err := s.set.Err(); err != nil {
		viewErrs = append(viewErrs, err.Error())
	}
	if err := s.coord.err(); err != nil {
		viewErrs = append(viewErrs, err.Error())
	}
	st.Etcd.ViewError = strings.Join(viewErrs, "; ")

	want := map[string]bool{}
	all := detail == "all"
	if detail == "" {
		total := 0
		for _, r := range routes {
			total += r.cache.Snapshot().Len()
		}
		all = total <= detailLimit
	} else if !all {
		for _, n := range strings.Split(detail, ",") {
			want[n] = true
		}
	}
	st.Gateway.Detail = "all"
	if !all {
		st.Gateway.Detail = "some"
	}
	for _, name := range names {
		st.Services = append(st.Services, s.serviceOf(name, routes[name], all || want[name]))
	}
	st.Elections, st.Locks = s.recipes(now)
	st.Timeline = s.tl.list()
	return st
}

func trafficOf(c *counters, sr *series, lastErr *atomic.Pointer[string]) traffic {
	t := traffic{Inflight: c.inflight.Load(), Total: c.calls.Load(), Failed: c.errors.Load()}
	t.Rate, t.Errors, t.P50, t.P99 = sr.last()
	t.Chart = sr.chart()
	if lastErr != nil {
		if e := lastErr.Load(); e != nil {
			t.LastErr = *e
		}
	}
	return t
}

func (s *statusSource) serviceOf(name string, r *route, detailed bool) serviceStatus {
	snap := r.cache.Snapshot()
	ss := serviceStatus{
		Name:     name,
		Revision: snap.Revision(),
		Synced:   snap.Synced(),
		ViewAgeS: snap.Age().Seconds(),
		Skipped:  snap.Skipped(),
		Count:    snap.Len(),
	}
	if err := r.cache.Err(); err != nil {
		ss.Error = err.Error()
	}
	r.stats.mu.Lock()
	defer r.stats.mu.Unlock()
	ss.traffic = trafficOf(&r.stats.calls, &r.stats.chart, nil)
	if detailed {
		ss.Instances = []instanceStatus{}
	}
	for in := range snap.All() {
		is := instanceStatus{ID: in.ID, Addr: in.Addr, Status: "serving", Weight: in.EffectiveWeight(), Metadata: in.Metadata}
		switch {
		case !in.Serving():
			is.Status = "draining"
			is.Reason = "shutting down: it drained itself before leaving"
			if d, ok := s.coord.drainOf(name, in.ID); ok {
				is.Reason = "drained by an operator"
				if d.Reason != "" {
					is.Reason += ": " + d.Reason
				}
			}
			ss.Draining++
		case r.picker.Ejected(in.ID):
			is.Status = "ejected"
			is.Reason = fmt.Sprintf("%d failed calls in a row; back after a %v cool-down", ejectAfter, ejectCooldown)
			ss.Ejected++
		default:
			ss.Serving++
		}
		if !detailed {
			continue
		}
		if st := r.stats.lookup(in.ID); st != nil {
			is.traffic = trafficOf(&st.calls, &st.chart, &st.lastErr)
			if is.Status == "ejected" && is.LastErr != "" {
				is.Reason += ": " + is.LastErr
			}
		}
		is.Inflight = r.picker.Inflight(in.ID)
		ss.Instances = append(ss.Instances, is)
	}
	return ss
}

// recipes lists the elections and locks, naming keys after the election
// candidates of the same lease.
func (s *statusSource) recipes(now time.Time) ([]electionStatus, []lockStatus) {
	c := s.coord
	c.mu.Lock()
	defer c.mu.Unlock()
	who := map[int64]string{}
	for _, ks := range c.elections {
		for _, k := range ks {
			if k.Value != "" {
				who[k.Lease] = k.Value
			}
		}
	}
	entry := func(k *recipeKey) lockEntry {
		e := lockEntry{Lease: fmt.Sprintf("%x", k.Lease), Token: k.Token, Key: k.Key, Since: k.Seen, ForS: now.Sub(k.Seen).Seconds()}
		e.Who, e.Known = who[k.Lease]
		if !e.Known {
			e.Who = "lease " + e.Lease
		}
		return e
	}
	els := []electionStatus{}
	for _, name := range sortedKeys(c.elections) {
		ks := c.elections[name]
		t := c.leaders[name]
		lead := ks[0]
		es := electionStatus{Name: name, Prefix: s.prefix("elections", name), Leader: orLease(lead), Key: lead.Key, Token: lead.Token,
			Lease: fmt.Sprintf("%x", lead.Lease), Since: t.since, TenureS: now.Sub(t.since).Seconds(), TenureKnown: t.known}
		for _, k := range ks {
			e := entry(k)
			if k.Value != "" {
				e.Who, e.Known = k.Value, true
			}
			es.Candidates = append(es.Candidates, e)
		}
		els = append(els, es)
	}
	locks := []lockStatus{}
	for _, name := range sortedKeys(c.locks) {
		ks := c.locks[name]
		h := entry(ks[0])
		ls := lockStatus{Name: name, Prefix: s.prefix("locks", name), Holder: &h, Waiters: []lockEntry{}}
		for _, k := range ks[1:] {
			ls.Waiters = append(ls.Waiters, entry(k))
		}
		locks = append(locks, ls)
	}
	return els, locks
}

func (s *statusSource) prefix(kind, name string) string { return s.ns + "/" + kind + "/" + name + "/" }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (s *statusSource) serveJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if r.URL.Query().Has("pretty") {
		enc.SetIndent("", "  ")
	}
	enc.Encode(s.collect(r.URL.Query().Get("detail")))
}

// pageHandler serves the page and its script and style.
func pageHandler() http.Handler {
	sub, err := fs.Sub(ui, "ui")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return http.StripPrefix("/_roster/", http.FileServerFS(sub))
}

// serveEvents streams the status as server-sent events: at once, then at
// every event of the timeline (a join, a drain, a new leader...), and at
// least every statusInterval.
func (s *statusSource) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	detail := r.URL.Query().Get("detail")
	tick := time.NewTicker(statusInterval)
	defer tick.Stop()
	for {
		news := s.tl.wait()
		b, err := json.Marshal(s.collect(detail))
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-news:
			// Coalesce a burst of events into one update.
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		case <-tick.C:
		}
	}
}

// serveHealth answers 200 when etcd serves and every routed cache has
// synced, 503 with the reason otherwise.
func (s *statusSource) serveHealth(w http.ResponseWriter, r *http.Request) {
	e := s.etcd()
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

func newGatewayInfo(name, listen, picker string) gatewayInfo {
	return gatewayInfo{Name: name, Listen: listen, Picker: picker, PID: os.Getpid(), Started: time.Now()}
}
