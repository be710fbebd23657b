package main

import (
	"context"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/election"
)

// followInterval is how often the gateway looks for services it has not
// routed yet, so the status page shows them before the first request.
const followInterval = time.Second

// followServices opens a route for every service registered under the
// namespace, now and every followInterval. The returned func stops it.
func followServices(ctx context.Context, cli *clientv3.Client, ns string, rt *router) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(followInterval)
		defer t.Stop()
		for {
			for _, name := range listServices(ctx, cli, ns) {
				rt.pin(name)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// listServices reads the service names from the key layout
// <ns>/services/<service>/<id>, keys only.
func listServices(ctx context.Context, cli *clientv3.Client, ns string) []string {
	prefix := ns + "/services/"
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithSerializable())
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var names []string
	for _, kv := range resp.Kvs {
		name, _, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), prefix), "/")
		if ok && name != "" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// elections reads who leads the election named after each service, the
// convention the demo workers follow.
type elections struct {
	cli *clientv3.Client
	ns  string

	mu sync.Mutex
	by map[string]*election.Election
}

func newElections(cli *clientv3.Client, ns string) *elections {
	return &elections{cli: cli, ns: ns, by: make(map[string]*election.Election)}
}

func (e *elections) states(ctx context.Context, services []string) []electionState {
	out := []electionState{}
	for _, name := range services {
		el, err := e.get(name)
		if err != nil {
			continue
		}
		st := electionState{Name: name, Prefix: el.Prefix()}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		l, err := el.Leader(lctx)
		cancel()
		if err == nil && l.Elected() {
			st.Leader, st.Revision = l.Value, l.Token
		}
		out = append(out, st)
	}
	return out
}

func (e *elections) get(name string) (*election.Election, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.by[name]; ok {
		return el, nil
	}
	el, err := election.New(e.cli, name, election.WithNamespace(e.ns))
	if err != nil {
		return nil, err
	}
	e.by[name] = el
	return el, nil
}

func (e *elections) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, el := range e.by {
		el.Close()
	}
	clear(e.by)
}
