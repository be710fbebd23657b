package watch

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Probe shares the revision reads of progress checks among the Followers
// of one client. A check needs etcd's revision read at some moment after
// the watch went quiet; a read another Follower began within the jitter of
// the check's start answers that as well as a read of its own, so a
// thousand idle caches make a few reads a round instead of a thousand.
// Only answers are shared: a Follower whose shared read failed reads for
// itself, so one Follower's cancelled context never passes for silence.
type Probe struct {
	cli *clientv3.Client

	mu   sync.Mutex
	last *probeRead // the read in flight, or the latest one
}

type probeRead struct {
	start time.Time
	done  chan struct{} // closed once rev and err are set
	rev   int64
	err   error
}

// NewProbe returns a Probe reading through cli.
func NewProbe(cli *clientv3.Client) *Probe { return &Probe{cli: cli} }

// revision returns etcd's revision, read with a linearizable request that
// began no earlier than since, and when that request began.
func (p *Probe) revision(ctx context.Context, key string, since time.Time, timeout time.Duration) (int64, time.Time, error) {
	p.mu.Lock()
	r := p.last
	if r != nil && !r.start.Before(since) {
		p.mu.Unlock()
		select {
		case <-r.done:
			if r.err == nil {
				return r.rev, r.start, nil
			}
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		}
		return readRevision(ctx, p.cli, key, timeout)
	}
	r = &probeRead{start: time.Now(), done: make(chan struct{})}
	p.last = r
	p.mu.Unlock()
	r.rev, _, r.err = readRevision(ctx, p.cli, key, timeout)
	close(r.done)
	return r.rev, r.start, r.err
}

// readRevision reads etcd's revision with a linearizable request, which
// succeeds only through a member that is part of a quorum.
func readRevision(ctx context.Context, cli *clientv3.Client, key string, timeout time.Duration) (int64, time.Time, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := cli.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return 0, start, err
	}
	return resp.Header.Revision, start, nil
}
