package faults

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/discovery"
	"github.com/rosterkit/roster/election"
	"github.com/rosterkit/roster/internal/etcdtest"
	"github.com/rosterkit/roster/lock"
	"github.com/rosterkit/roster/registry"
)

// The workload's shape. Leases are short so that faults past a TTL stay
// cheap; the pace keeps a few hundred writes a second off a loaded CI box.
const (
	ttl           = 2 * time.Second
	progressEvery = time.Second // discovery's progress interval
	writesPerTerm = 4           // fenced writes per leadership
	writesPerHold = 2           // fenced writes per lock holding
	writePace     = 20 * time.Millisecond
	updatePace    = 300 * time.Millisecond // instance metadata churn
	opTimeout     = 3 * time.Second
	// writeTimeout bounds a fenced write: a write that went to a member
	// that died waits out its deadline (etcd would wait 7 s), and no one
	// can resend an arbitrary write for it.
	writeTimeout   = 500 * time.Millisecond
	electionName   = "leader"
	mutexName      = "jobs"
	electionLogPfx = "/faults/log/election/"
	lockLogPfx     = "/faults/log/lock/"
)

// services are what every client registers one instance of, and watches.
var services = []string{"api", "db"}

// client is one process of the system under test: its own etcd client,
// reaching every member through a proxy of its own (so it can be cut off
// alone), with a registrar, a discoverer watching every service, an
// election candidate and a mutex contender.
type client struct {
	name    string
	cli     *clientv3.Client
	proxies []*etcdtest.Proxy

	reg    *registry.Registrar
	disc   *discovery.Discoverer
	caches []*discovery.Cache
	elec   *election.Election
	mutex  *lock.Mutex

	// What the client holds right now, for faults aimed at a holder.
	leadership atomic.Pointer[election.Leadership]
	hold       atomic.Pointer[lock.Hold]
	// stalled keeps the client's leadership and holding going, writing,
	// until they are lost, instead of handing them on after a few writes.
	stalled atomic.Bool
	// onLead and onHold, when set, run once as the client takes the
	// leadership or the mutex, before its first fenced write under it: a
	// fault started at that transition.
	onLead atomic.Pointer[func(*election.Leadership)]
	onHold atomic.Pointer[func(*lock.Hold)]
}

func newClient(t *testing.T, c cluster, name string) *client {
	t.Helper()
	cl := &client{name: name}
	var eps []string
	for i := range c.Size() {
		p := etcdtest.NewProxy(t, c.Endpoint(i))
		cl.proxies = append(cl.proxies, p)
		eps = append(eps, p.Endpoint())
	}
	cl.cli = etcdtest.NewClient(t, eps...)
	var err error
	if cl.reg, err = registry.New(cl.cli, registry.WithTTL(ttl)); err != nil {
		t.Fatal(err)
	}
	if cl.disc, err = discovery.New(cl.cli, discovery.WithProgressInterval(progressEvery)); err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		cache, err := cl.disc.Watch(svc)
		if err != nil {
			t.Fatal(err)
		}
		cl.caches = append(cl.caches, cache)
	}
	if cl.elec, err = election.New(cl.cli, electionName, election.WithTTL(ttl)); err != nil {
		t.Fatal(err)
	}
	if cl.mutex, err = lock.NewMutex(cl.cli, mutexName, lock.WithTTL(ttl)); err != nil {
		t.Fatal(err)
	}
	return cl
}

// instance is what client name registers for svc.
func instance(svc, name string, port int) roster.Instance {
	return roster.Instance{Service: svc, ID: name, Addr: "127.0.0.1:" + strconv.Itoa(port)}
}

// register registers the client's instances.
func (cl *client) register(ctx context.Context, port int) error {
	for _, svc := range services {
		if err := cl.reg.Register(ctx, instance(svc, cl.name, port)); err != nil {
			return fmt.Errorf("%s: register %s: %w", cl.name, svc, err)
		}
	}
	return nil
}

// partition holds every byte between the client and etcd.
func (cl *client) partition() {
	for _, p := range cl.proxies {
		p.Pause()
	}
}

// cut resets the client's connections and refuses new ones.
func (cl *client) cut() {
	for _, p := range cl.proxies {
		p.Cut()
	}
}

func (cl *client) restore() {
	for _, p := range cl.proxies {
		p.Restore()
	}
}

// close stops what the client started; the etcd client and proxies are
// closed by the test's cleanup.
func (cl *client) close() error {
	var errs []error
	for _, c := range cl.caches {
		errs = append(errs, c.Close())
	}
	errs = append(errs, cl.disc.Close(), cl.elec.Close(), cl.mutex.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs = append(errs, cl.reg.Shutdown(ctx))
	return errors.Join(errs...)
}

// campaign keeps the client in the election until ctx ends: each
// leadership makes a few fenced writes, then resigns, so leadership
// rotates.
func (s *suite) campaign(ctx context.Context, cl *client) {
	work := func(wctx context.Context, l *election.Leadership) error {
		start := time.Now()
		cl.leadership.Store(l)
		if f := cl.onLead.Swap(nil); f != nil {
			(*f)(l)
		}
		for n := 0; (n < writesPerTerm || cl.stalled.Load()) && wctx.Err() == nil; n++ {
			s.fencedWrite(ctx, cl, s.elections, l.Token(), electionLogPfx, cl.elec.Prefix(), l.Do)
			pace(wctx, writePace)
		}
		end := time.Now()
		cl.leadership.Store(nil)
		s.elections.addTerm(term{who: cl.name, token: l.Token(), start: start, end: end, lost: l.Err() != nil, phase: s.currentPhase()})
		return nil
	}
	// Run returns only when ctx ends (or on ErrClosed).
	_ = cl.elec.Run(ctx, cl.name, work)
}

// contend takes the mutex over and over until ctx ends, making a few
// fenced writes under each holding.
func (s *suite) contend(ctx context.Context, cl *client) {
	for ctx.Err() == nil {
		lctx, cancel := context.WithTimeout(ctx, 4*ttl)
		h, err := cl.mutex.Lock(lctx)
		cancel()
		if err != nil {
			pace(ctx, 50*time.Millisecond) // etcd out of reach: try again soon
			continue
		}
		start := time.Now()
		cl.hold.Store(h)
		if f := cl.onHold.Swap(nil); f != nil {
			(*f)(h)
		}
		do := holdTxn(h)
		// Writes go on after a loss while n < writesPerHold: they must be
		// refused.
		for n := 0; ctx.Err() == nil && (n < writesPerHold || (cl.stalled.Load() && h.Err() == nil)); n++ {
			s.fencedWrite(ctx, cl, s.locks, h.Token(), lockLogPfx, cl.mutex.Prefix(), do)
			pace(ctx, writePace)
		}
		end := time.Now()
		cl.hold.Store(nil)
		s.locks.addTerm(term{who: cl.name, token: h.Token(), start: start, end: end, lost: h.Err() != nil, phase: s.currentPhase()})
		rctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		_ = h.Release(rctx) // if it fails, the key goes with the lease
		cancel()
	}
}

// holdTxn is h's fenced transaction in the shape of Leadership.Do.
func holdTxn(h *lock.Hold) func(context.Context, ...clientv3.Op) (*clientv3.TxnResponse, error) {
	return func(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
		return h.Txn(ctx).Then(ops...).Commit()
	}
}

// churn keeps updating the client's first instance, so that caches have
// changes to follow during faults.
func (s *suite) churn(ctx context.Context, cl *client, port int) {
	for n := 0; ctx.Err() == nil; n++ {
		inst := instance(services[0], cl.name, port)
		inst.Metadata = map[string]string{"n": strconv.Itoa(n)}
		uctx, cancel := context.WithTimeout(ctx, opTimeout)
		_ = cl.reg.Update(uctx, inst) // fails while etcd is out of reach
		cancel()
		pace(ctx, updatePace)
	}
}

// fencedWrite puts one log entry through do (Leadership.Do, or a Hold's
// Txn) and records it. The same transaction reads the oldest key under the
// lock's or election's prefix: the holder as etcd sees it.
//
// A stalled client's write waits for as long as the suite is patient, so
// that one held up by a partition reaches etcd after it ends.
func (s *suite) fencedWrite(ctx context.Context, cl *client, h *history, token int64, logPfx, holders string,
	do func(context.Context, ...clientv3.Op) (*clientv3.TxnResponse, error)) write {
	w := write{id: s.nextID.Add(1), who: cl.name, token: token, phase: s.currentPhase()}
	timeout := writeTimeout
	if cl.stalled.Load() {
		timeout = patience
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w.invoke = time.Now()
	resp, err := do(ctx,
		clientv3.OpPut(logKey(logPfx, w.id), fmt.Sprintf("%s %d", cl.name, token)),
		clientv3.OpGet(holders, clientv3.WithFirstCreate()...))
	w.ret, w.err = time.Now(), err
	switch {
	case err == nil:
		w.outcome, w.rev = applied, resp.Header.Revision
		if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) > 0 {
			w.oldest = kvs[0].CreateRevision
		}
	case errors.Is(err, election.ErrNotLeader), errors.Is(err, lock.ErrNotHeld):
		w.outcome = refused
	default:
		w.outcome = unknown
	}
	h.addWrite(w)
	return w
}

func logKey(pfx string, id int64) string { return fmt.Sprintf("%s%012d", pfx, id) }

// readLog returns the log entries under pfx as etcd has them.
func readLog(ctx context.Context, cli *clientv3.Client, pfx string) ([]entry, error) {
	resp, err := cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	var log []entry
	for _, kv := range resp.Kvs {
		e := entry{rev: kv.ModRevision}
		id, err := strconv.ParseInt(string(kv.Key[len(pfx):]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("log key %q: %w", kv.Key, err)
		}
		e.id = id
		if _, err := fmt.Sscanf(string(kv.Value), "%s %d", &e.who, &e.token); err != nil {
			return nil, fmt.Errorf("log value %q: %w", kv.Value, err)
		}
		log = append(log, e)
	}
	return log, nil
}

// pace waits d, or until ctx ends: the workload's rhythm, not a
// synchronization.
func pace(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
