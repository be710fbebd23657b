// Package watch follows one etcd prefix without a gap, and says how fresh
// what it has is, whatever call is waiting on etcd.
//
// A Follower lists the prefix at one revision, then watches from the next
// one, handing both to a Handler. When the watch fails it lists again (at
// once after a compaction, with backoff otherwise). A watch that stays
// silent for the progress interval is checked: a linearizable read says
// whether etcd moved on, and if so a progress request must be answered.
//
// Freshness is watched apart from that loop: the time of the last
// confirmation (a list, a watch response, a passed check; each page of a
// long list counts as an answer) is kept, and a
// watchdog reports the state stale once it is older than staleAfter of the
// interval, whether the loop waits on a list, on a watch being created (a
// clientv3 Watch call returns only once the server has confirmed it, so on a
// black-holed connection it never returns), on a check or on a re-list.
// Staleness is thus reported within twice the interval of the moment etcd
// stopped answering.
package watch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/backoff"
)

// Handler receives what a Follower reads. Reset, Apply and Confirm are
// called from the Follower's loop, one at a time; SetErr may also be called
// from its watchdog, never concurrently with another SetErr.
type Handler interface {
	// Reset replaces the state with kvs, the whole prefix as read at rev.
	Reset(kvs []*mvccpb.KeyValue, rev int64)
	// Apply applies the events of one or more watch responses, in order;
	// afterwards the state is complete up to rev.
	Apply(evs []*clientv3.Event, rev int64)
	// Confirm says the state is current as of rev, now, unchanged.
	Confirm(rev int64)
	// SetErr says why the state may be out of date, or nil once it is
	// current again.
	SetErr(err error)
}

// Config says what to follow and how.
type Config struct {
	Client *clientv3.Client
	Prefix string
	// What names the prefix in errors, e.g. `service "users"`.
	What string
	// Interval is the progress interval: how long the watch may be silent
	// before the state is checked.
	Interval time.Duration
	Backoff  backoff.Backoff
	// PageSize is how many keys one Get of a list reads.
	PageSize int64
	// KeysOnly lists keys without values.
	KeysOnly bool
	// Stale is the sentinel staleness errors wrap (besides roster.ErrStale).
	Stale error
	// Closed is the error reported when the client was closed under the
	// Follower.
	Closed error
	// Probe, when set, shares progress checks' reads with the other
	// Followers of the same client.
	Probe *Probe
}

// staleAfter is the age of the last confirmation, in progress intervals, at
// which the state is reported stale. A healthy idle follower confirms every
// interval plus two round trips (a read, a progress notification); the
// watchdog wakes when the last confirmation reaches that age, so it reports
// about staleAfter intervals after the last confirmation, which came no
// earlier than etcd stopped answering: under 2 intervals.
const staleAfter = 1.5

// minRequestTimeout is the least time a list page, a watch creation or a
// progress check may take before the attempt is abandoned and retried.
// Staleness is reported by the watchdog long before; this bounds recovery
// from a connection that died without an error.
const minRequestTimeout = 5 * time.Second

// maxDrain bounds how many queued watch responses are folded into one
// Apply, so that a continuous stream of events still reports regularly.
const maxDrain = 256

// Follower follows one prefix; see the package doc.
type Follower struct {
	cfg Config
	h   Handler

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop and the watchdog return
	synced chan struct{} // closed after the first complete list
	wg     sync.WaitGroup

	base      time.Time    // monotonic origin of confirmed
	confirmed atomic.Int64 // nanoseconds after base of the last confirmation, or of a list page

	phase atomic.Pointer[string]

	errMu sync.Mutex
	err   error
	stale bool // err is the watchdog's

	lists    atomic.Uint64
	restarts atomic.Uint64

	// Owned by the loop.
	rev        int64
	syncedOnce bool
}

// Start starts following cfg.Prefix into h.
func Start(cfg Config, h Handler) *Follower {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 5000
	}
	f := &Follower{cfg: cfg, h: h, done: make(chan struct{}), synced: make(chan struct{}), base: time.Now()}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.setPhase("listing")
	f.wg.Add(2)
	go f.run()
	go f.watchdog()
	go func() {
		f.wg.Wait()
		close(f.done)
	}()
	return f
}

// Stop ends the Follower and waits for it.
func (f *Follower) Stop() {
	f.cancel()
	<-f.done
}

// Done is closed once the Follower has ended: stopped, or its client closed.
func (f *Follower) Done() <-chan struct{} { return f.done }

// Synced is closed once the prefix was listed completely for the first time.
func (f *Follower) Synced() <-chan struct{} { return f.synced }

// Err is why the state may be out of date, nil while it is current.
func (f *Follower) Err() error {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	return f.err
}

// Lists counts complete reads of the prefix.
func (f *Follower) Lists() uint64 { return f.lists.Load() }

// Restarts counts attempts that ended in an error and a new list.
func (f *Follower) Restarts() uint64 { return f.restarts.Load() }

func (f *Follower) setPhase(p string) { f.phase.Store(&p) }

// confirm records that the state is current now and clears any error.
func (f *Follower) confirm() { f.confirmAt(time.Now()) }

// confirmAt records that the state was current at t and clears any error.
func (f *Follower) confirmAt(t time.Time) {
	at := int64(t.Sub(f.base))
	for {
		old := f.confirmed.Load()
		if at <= old || f.confirmed.CompareAndSwap(old, at) {
			break
		}
	}
	f.setErr(nil, false)
}

func (f *Follower) setErr(err error, stale bool) {
	f.errMu.Lock()
	defer f.errMu.Unlock()
	if err == nil && f.err == nil {
		return
	}
	if !stale && err != nil && f.stale {
		// The loop's own failure says more than "no answer"; keep both.
		err = fmt.Errorf("%w (%w)", f.err, err)
	}
	f.err, f.stale = err, stale && err != nil
	f.h.SetErr(err)
}

func (f *Follower) requestTimeout() time.Duration {
	return max(2*f.cfg.Interval, minRequestTimeout)
}

// watchdog reports the state stale once its last confirmation is too old,
// whatever the loop is waiting for.
func (f *Follower) watchdog() {
	defer f.wg.Done()
	bound := time.Duration(staleAfter * float64(f.cfg.Interval))
	// Sleep until the last confirmation would be too old, rather than poll:
	// a thousand idle caches wake once an interval each, not ten times.
	timer := time.NewTimer(bound)
	defer timer.Stop()
	reported := int64(-1)
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-timer.C:
		}
		last := f.confirmed.Load()
		age := time.Since(f.base) - time.Duration(last)
		if age < bound {
			timer.Reset(bound - age)
			continue
		}
		// Any later confirmation is too old no sooner than a bound from now.
		timer.Reset(bound)
		if last == reported {
			continue
		}
		reported = last
		f.setErr(fmt.Errorf("%w: %s: %w: no answer from etcd for %v while %s",
			f.cfg.Stale, f.cfg.What, roster.ErrStale, age.Round(time.Millisecond), *f.phase.Load()), true)
	}
}

func (f *Follower) run() {
	defer f.wg.Done()
	defer f.cancel() // ends the watchdog too
	bo := f.cfg.Backoff
	for {
		err := f.list()
		heard := false
		if err == nil {
			heard, err = f.follow()
		}
		if f.ctx.Err() != nil {
			return
		}
		if f.cfg.Client.Ctx().Err() != nil {
			// The user closed the client: nothing can be read any more.
			f.setErr(fmt.Errorf("%w: %s: etcd client closed", f.cfg.Closed, f.cfg.What), false)
			return
		}
		f.setErr(err, false)
		f.restarts.Add(1)
		if heard {
			bo.Reset()
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue // the list that follows is the remedy; no reason to wait
		}
		f.setPhase("waiting to retry")
		if backoff.Sleep(f.ctx, bo.Next()) != nil {
			return
		}
	}
}

// list reads the whole prefix at one revision, in pages, and resets the
// handler's state to it.
func (f *Follower) list() error {
	f.setPhase("listing")
	f.lists.Add(1)
	end := clientv3.GetPrefixRangeEnd(f.cfg.Prefix)
	key := f.cfg.Prefix
	var (
		rev int64
		kvs []*mvccpb.KeyValue
	)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(f.cfg.PageSize)}
		if f.cfg.KeysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		if rev != 0 {
			// Later pages read the same revision as the first, so the
			// pages form one consistent view.
			opts = append(opts, clientv3.WithRev(rev))
		}
		ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(f.ctx), f.requestTimeout())
		resp, err := f.cfg.Client.Get(ctx, key, opts...)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: list: %w", f.cfg.What, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs = append(kvs, resp.Kvs...)
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		// etcd answers: a long list of a large prefix is not silence.
		f.confirmed.Store(int64(time.Since(f.base)))
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	f.rev = rev
	f.h.Reset(kvs, rev)
	f.confirm()
	if !f.syncedOnce {
		f.syncedOnce = true
		close(f.synced)
	}
	return nil
}

// follow watches the prefix from the revision after the list until the
// watch fails or goes silent. heard says whether the watch delivered
// anything, which tells a flapping connection from a working one for the
// retry backoff.
func (f *Follower) follow() (heard bool, err error) {
	f.setPhase("creating the watch")
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(f.ctx))
	var progress sync.WaitGroup
	defer progress.Wait()
	defer cancel()

	// Watch returns only once the server confirmed the watch: bound it.
	timer := time.AfterFunc(f.requestTimeout(), cancel)
	wch := f.cfg.Client.Watch(wctx, f.cfg.Prefix, clientv3.WithPrefix(),
		clientv3.WithRev(f.rev+1), clientv3.WithProgressNotify())
	if !timer.Stop() && f.ctx.Err() == nil {
		return false, fmt.Errorf("%s: watch not created within %v", f.cfg.What, f.requestTimeout())
	}
	f.setPhase("watching")

	silence := time.NewTimer(f.quiet())
	defer silence.Stop()
	requested := false // a progress notification was asked for and not yet seen
	var requesting atomic.Bool

	for {
		select {
		case <-f.ctx.Done():
			return heard, nil
		case resp, ok := <-wch:
			if !ok {
				return heard, fmt.Errorf("%s: watch channel closed", f.cfg.What)
			}
			evs, err := f.absorb(&resp, nil)
			if err != nil {
				return heard, err
			}
			// Fold whatever else is already queued into the same Apply.
		drain:
			for range maxDrain {
				select {
				case resp, ok := <-wch:
					if !ok {
						f.apply(evs)
						return true, fmt.Errorf("%s: watch channel closed", f.cfg.What)
					}
					if evs, err = f.absorb(&resp, evs); err != nil {
						f.apply(evs)
						return true, err
					}
				default:
					break drain
				}
			}
			f.apply(evs)
			heard, requested = true, false
			silence.Reset(f.quiet())
		case <-silence.C:
			if requested {
				return heard, fmt.Errorf("%w: %s: %w: no watch response within %v of a progress request",
					f.cfg.Stale, f.cfg.What, roster.ErrStale, f.cfg.Interval)
			}
			f.setPhase("checking progress")
			rev, at, err := f.currentRevision(wctx)
			f.setPhase("watching")
			if err != nil {
				return heard, fmt.Errorf("%w: %s: %w: progress check: %w", f.cfg.Stale, f.cfg.What, roster.ErrStale, err)
			}
			if rev <= f.rev {
				// Nothing at all was written since the state's revision,
				// so the state was current when the read began.
				f.h.Confirm(f.rev)
				f.confirmAt(at)
				silence.Reset(f.quiet())
				continue
			}
			// etcd moved on: the watch must say how far it got. (Asked
			// before a write, etcd would not answer: it answers only once
			// its revision reaches the watch's start revision.)
			requested = true
			if requesting.CompareAndSwap(false, true) {
				progress.Go(func() {
					defer requesting.Store(false)
					_ = f.cfg.Client.RequestProgress(wctx) // an error shows as silence
				})
			}
			silence.Reset(f.cfg.Interval / 2)
		}
	}
}

// quiet is how long the watch may stay silent before it is checked: the
// interval less up to a fifth, at random. The watches of one client share
// a stream, and etcd answers a progress request on it to all of them, so
// the first check of a round confirms the others too; without the jitter
// every watch confirmed by one answer would check again at the same moment
// (a thousand caches: a thousand reads and progress requests at once).
func (f *Follower) quiet() time.Duration {
	if j := f.cfg.Interval / 5; j > 0 {
		return f.cfg.Interval - rand.N(j)
	}
	return f.cfg.Interval
}

// currentRevision reads etcd's revision with a linearizable request begun
// at most a jitter's width before now, and says when it began.
func (f *Follower) currentRevision(ctx context.Context) (int64, time.Time, error) {
	if f.cfg.Probe != nil {
		return f.cfg.Probe.revision(ctx, f.cfg.Prefix, time.Now().Add(-f.cfg.Interval/5), f.cfg.Interval/2)
	}
	return readRevision(ctx, f.cfg.Client, f.cfg.Prefix, f.cfg.Interval/2)
}

// absorb appends one watch response's events to evs and advances the
// revision.
func (f *Follower) absorb(resp *clientv3.WatchResponse, evs []*clientv3.Event) ([]*clientv3.Event, error) {
	if err := resp.Err(); err != nil {
		return evs, fmt.Errorf("%s: watch: %w", f.cfg.What, err)
	}
	if resp.Canceled {
		return evs, fmt.Errorf("%s: watch canceled: %s", f.cfg.What, resp.CancelReason)
	}
	if resp.IsProgressNotify() {
		// Progress responses come only once every event up to their
		// revision has been sent.
		f.rev = max(f.rev, resp.Header.Revision)
		return evs, nil
	}
	for _, ev := range resp.Events {
		// Event batches may carry a header revision beyond their last
		// event while more events are pending, so only event revisions
		// advance the state.
		f.rev = max(f.rev, ev.Kv.ModRevision)
	}
	return append(evs, resp.Events...), nil
}

// apply hands evs to the handler, or confirms when there were none.
func (f *Follower) apply(evs []*clientv3.Event) {
	if len(evs) > 0 {
		f.h.Apply(evs, f.rev)
	} else {
		f.h.Confirm(f.rev)
	}
	f.confirm()
}
