package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/backoff"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/watch"
)

var (
	errStale  = errors.New("gateway: view of etcd out of date")
	errClosed = errors.New("gateway: etcd client closed")
)

// coordInterval is how long the followers of elections, locks and drain
// requests may hear nothing before they check they are current.
const coordInterval = 5 * time.Second

// coord follows, in etcd's recipe layouts, every election (who leads, since
// when, with which token), every mutex (who holds it, who waits) and the
// operators' drain requests, and puts their changes on the timeline.
// It reads the keys as etcdctl and the roster CLI do, so elections and
// locks of any program in the namespace show, not only the demo's.
type coord struct {
	tl      *timeline
	started time.Time

	mu        sync.Mutex
	elections map[string][]*recipeKey // by name, in create-revision order
	locks     map[string][]*recipeKey
	drains    map[string]drainInfo // by service + "/" + id
	leaders   map[string]tenure    // by election: the current leader
	errs      [3]error

	followers []*watch.Follower
}

// recipeKey is one candidate of an election or one holder or waiter of a
// lock.
type recipeKey struct {
	Key   string
	Value string
	Lease int64
	Token int64 // create revision
	Seen  time.Time
}

type drainInfo struct {
	Reason string
	Since  time.Time
}

// tenure is a leader and since when it leads, as far as this gateway saw.
type tenure struct {
	key   string
	value string
	token int64
	since time.Time
	known bool // false when it already led at the gateway's start
}

const (
	kindElections = iota
	kindLocks
	kindDrains
)

func startCoord(cli *clientv3.Client, ns string, tl *timeline) *coord {
	c := &coord{tl: tl, started: time.Now(), elections: map[string][]*recipeKey{},
		locks: map[string][]*recipeKey{}, drains: map[string]drainInfo{}, leaders: map[string]tenure{}}
	for kind, prefix := range []string{keys.ElectionsPrefix(ns), keys.LocksPrefix(ns), keys.DrainsPrefix(ns)} {
		h := &coordHandler{c: c, kind: kind, prefix: prefix, ns: ns}
		c.followers = append(c.followers, watch.Start(watch.Config{
			Client: cli, Prefix: prefix, What: "keys under " + prefix, Interval: coordInterval,
			Backoff: backoff.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second},
			Stale:   errStale, Closed: errClosed,
		}, h))
	}
	return c
}

func (c *coord) Close() {
	for _, f := range c.followers {
		f.Stop()
	}
}

// err says why the view of elections, locks or drains may be out of date.
func (c *coord) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs[:]...)
}

type coordHandler struct {
	c      *coord
	kind   int
	prefix string
	ns     string
	synced bool
}

func (h *coordHandler) Reset(kvs []*mvccpb.KeyValue, rev int64) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	switch h.kind {
	case kindDrains:
		old := c.drains
		c.drains = map[string]drainInfo{}
		for _, kv := range kvs {
			if service, id, ok := keys.ParseDrainKey(h.ns, string(kv.Key)); ok {
				k := service + "/" + id
				d, had := old[k]
				if !had {
					d = drainInfo{Reason: string(kv.Value), Since: now}
					if h.synced {
						c.drainEvent(service, id, d.Reason, true)
					}
				}
				c.drains[k] = d
			}
		}
		if h.synced {
			for k := range old {
				if _, ok := c.drains[k]; !ok {
					service, id, _ := strings.Cut(k, "/")
					c.drainEvent(service, id, "", false)
				}
			}
		}
	default:
		m := c.recipes(h.kind)
		seen := map[string]time.Time{}
		for _, ks := range m {
			for _, k := range ks {
				seen[k.Key] = k.Seen
			}
		}
		names := map[string]bool{}
		for name := range m {
			names[name] = true
		}
		clear(m)
		for _, kv := range kvs {
			name, _, ok := keys.SplitRecipeKey(h.prefix, string(kv.Key))
			if !ok {
				continue
			}
			at, ok := seen[string(kv.Key)]
			if !ok {
				at = now
			}
			m[name] = append(m[name], &recipeKey{Key: string(kv.Key), Value: string(kv.Value),
				Lease: kv.Lease, Token: kv.CreateRevision, Seen: at})
			names[name] = true
		}
		for name := range names {
			slices.SortFunc(m[name], func(a, b *recipeKey) int { return int(a.Token - b.Token) })
			if h.kind == kindElections {
				c.leaderCheck(name, !h.synced)
			}
		}
	}
	h.synced = true
}

func (h *coordHandler) Apply(evs []*clientv3.Event, rev int64) {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	touched := map[string]bool{}
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		if h.kind == kindDrains {
			service, id, ok := keys.ParseDrainKey(h.ns, key)
			if !ok {
				continue
			}
			k := service + "/" + id
			if ev.Type == clientv3.EventTypeDelete {
				if _, had := c.drains[k]; had {
					delete(c.drains, k)
					c.drainEvent(service, id, "", false)
				}
				continue
			}
			d, had := c.drains[k]
			if !had {
				d.Since = now
			}
			d.Reason = string(ev.Kv.Value)
			c.drains[k] = d
			if !had {
				c.drainEvent(service, id, d.Reason, true)
			}
			continue
		}
		name, _, ok := keys.SplitRecipeKey(h.prefix, key)
		if !ok {
			continue
		}
		m := c.recipes(h.kind)
		ks := m[name]
		i := slices.IndexFunc(ks, func(k *recipeKey) bool { return k.Key == key })
		if ev.Type == clientv3.EventTypeDelete {
			if i >= 0 {
				ks = slices.Delete(ks, i, i+1)
			}
		} else if i >= 0 {
			ks[i] = &recipeKey{Key: key, Value: string(ev.Kv.Value), Lease: ev.Kv.Lease, Token: ev.Kv.CreateRevision, Seen: ks[i].Seen}
		} else {
			ks = append(ks, &recipeKey{Key: key, Value: string(ev.Kv.Value), Lease: ev.Kv.Lease, Token: ev.Kv.CreateRevision, Seen: now})
			slices.SortFunc(ks, func(a, b *recipeKey) int { return int(a.Token - b.Token) })
		}
		if len(ks) == 0 {
			delete(m, name)
		} else {
			m[name] = ks
		}
		touched[name] = true
	}
	if h.kind == kindElections {
		for name := range touched {
			c.leaderCheck(name, false)
		}
	}
}

func (h *coordHandler) Confirm(rev int64) {}

func (h *coordHandler) SetErr(err error) {
	h.c.mu.Lock()
	h.c.errs[h.kind] = err
	h.c.mu.Unlock()
}

// recipes returns the map of a kind. c.mu must be held.
func (c *coord) recipes(kind int) map[string][]*recipeKey {
	if kind == kindElections {
		return c.elections
	}
	return c.locks
}

// leaderCheck records the leader of an election and puts a change on the
// timeline; at the first list, leaders are taken as found. c.mu must be
// held.
func (c *coord) leaderCheck(name string, initial bool) {
	ks := c.elections[name]
	old, had := c.leaders[name]
	if len(ks) == 0 {
		if had {
			delete(c.leaders, name)
			c.tl.add(event{Kind: "leader", Election: name,
				Text: fmt.Sprintf("nobody leads %s any more (%s resigned or its lease ended)", name, old.value)})
		}
		return
	}
	lead := ks[0]
	if had && old.key == lead.Key && old.token == lead.Token {
		return
	}
	c.leaders[name] = tenure{key: lead.Key, value: orLease(lead), token: lead.Token, since: time.Now(), known: !initial}
	if initial {
		return
	}
	text := fmt.Sprintf("%s now leads %s (fencing token %d)", orLease(lead), name, lead.Token)
	if had {
		text = fmt.Sprintf("%s now leads %s (fencing token %d), after %s", orLease(lead), name, lead.Token, old.value)
	}
	c.tl.add(event{Kind: "leader", Election: name, Text: text})
}

func orLease(k *recipeKey) string {
	if k.Value != "" {
		return k.Value
	}
	return fmt.Sprintf("lease %x", k.Lease)
}

func (c *coord) drainEvent(service, id, reason string, on bool) {
	if on {
		text := fmt.Sprintf("an operator asked to drain %s/%s", service, id)
		if reason != "" {
			text += ": " + reason
		}
		c.tl.add(event{Kind: "drain", Service: service, Instance: id, Text: text})
		return
	}
	c.tl.add(event{Kind: "undrain", Service: service, Instance: id,
		Text: fmt.Sprintf("an operator cancelled the drain of %s/%s", service, id)})
}

// drainOf returns the operator's drain request of an instance, if any.
func (c *coord) drainOf(service, id string) (drainInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.drains[service+"/"+id]
	return d, ok
}
