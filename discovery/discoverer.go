package discovery

import (
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
)

// Discoverer follows services registered in etcd over the caller's
// client. It creates no connections of its own: all caches share the
// client, and each watched service costs one watch and one goroutine while
// at least one Cache handle of it is open.
type Discoverer struct {
	client *clientv3.Client
	cfg    config

	mu       sync.Mutex
	watchers map[string]*watcher
	closed   bool
}

// New returns a Discoverer reading the registry's layout under the
// configured namespace through client. The client stays the caller's: close
// the Discoverer before the client.
func New(client *clientv3.Client, opts ...Option) (*Discoverer, error) {
	cfg := newConfig(opts)
	if err := keys.ValidateNamespace(cfg.namespace); err != nil {
		return nil, err
	}
	return &Discoverer{client: client, cfg: cfg, watchers: make(map[string]*watcher)}, nil
}

// Watch returns a handle on the live view of service, starting to list
// and watch it unless another open handle already does. The handle starts
// empty; use WaitSynced to wait for the first list. Close the handle when
// done with it. Errors wrap roster.ErrInvalidName or are ErrClosed.
func (d *Discoverer) Watch(service string) (*Cache, error) {
	if err := roster.ValidateName("service", service); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	w := d.watchers[service]
	if w == nil {
		w = newWatcher(d.client, d.cfg, service)
		d.watchers[service] = w
		go w.run()
	}
	w.refs++
	return &Cache{d: d, w: w, closed: make(chan struct{})}, nil
}

// release drops one reference to w and stops it when none is left.
func (d *Discoverer) release(w *watcher) {
	d.mu.Lock()
	w.refs--
	last := w.refs == 0
	if last && d.watchers[w.service] == w {
		delete(d.watchers, w.service)
	}
	d.mu.Unlock()
	if last {
		w.stop()
	}
}

// watching is the number of services currently watched, for tests.
func (d *Discoverer) watching() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.watchers)
}

// Close stops every watch and waits for their goroutines. Open Cache
// handles keep their last view; their waiting calls return ErrClosed.
// Close is idempotent.
func (d *Discoverer) Close() error {
	d.mu.Lock()
	d.closed = true
	ws := make([]*watcher, 0, len(d.watchers))
	for _, w := range d.watchers {
		ws = append(ws, w)
	}
	clear(d.watchers)
	d.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	return nil
}
