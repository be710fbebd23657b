package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/internal/watch"
)

// Discoverer follows the services registered in etcd over the caller's
// client. It opens no connection of its own: each followed service costs
// one watch on the client while a handle of it is open.
type Discoverer struct {
	client *clientv3.Client
	cfg    config
	log    *slog.Logger
	tel    *telemetry
	probe  *watch.Probe // shared by the caches' progress checks

	mu       sync.Mutex
	watchers map[string]*watcher
	sets     map[*ServiceSet]struct{}
	closed   bool
}

// errClientClosed is returned by calls that would need the etcd client
// once it is closed.
var errClientClosed = fmt.Errorf("%w: etcd client closed", ErrClosed)

// New returns a Discoverer of the registry's layout under the configured
// namespace, read through client, which stays the caller's: close the
// Discoverer first. A nil client gives an error wrapping
// roster.ErrNilClient, a bad option one wrapping roster.ErrInvalidOption
// or roster.ErrInvalidName.
func New(client *clientv3.Client, opts ...Option) (*Discoverer, error) {
	if client == nil {
		return nil, fmt.Errorf("discovery: %w", roster.ErrNilClient)
	}
	if client.Ctx().Err() != nil {
		return nil, errClientClosed
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	d := &Discoverer{
		client:   client,
		probe:    watch.NewProbe(client),
		cfg:      cfg,
		log:      obs.Logger(cfg.logger),
		watchers: make(map[string]*watcher),
		sets:     make(map[*ServiceSet]struct{}),
	}
	if d.tel, err = newTelemetry(d, cfg.meterProvider); err != nil {
		return nil, err
	}
	return d, nil
}

// Watch returns a handle on the live view of service, starting to list and
// watch it unless an open handle already does. The view starts empty: use
// WaitSynced to wait for the first list. Close the handle when done.
// Errors wrap roster.ErrInvalidName, or are ErrClosed.
func (d *Discoverer) Watch(service string) (*Cache, error) {
	if d == nil {
		return nil, ErrClosed
	}
	if err := roster.ValidateName("service", service); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return nil, ErrClosed
	case d.client.Ctx().Err() != nil:
		return nil, errClientClosed
	}
	w := d.watchers[service]
	if w == nil {
		w = newWatcher(d, service)
		d.watchers[service] = w
	}
	w.refs++
	ctx, cancel := context.WithCancel(context.Background())
	return &Cache{d: d, w: w, ctx: ctx, cancel: cancel}, nil
}

// release drops one reference to w and stops it when none is left.
func (d *Discoverer) release(w *watcher) {
	d.mu.Lock()
	w.refs--
	last := w.refs == 0 && d.watchers[w.service] == w
	if last {
		delete(d.watchers, w.service)
	}
	d.mu.Unlock()
	if last {
		w.stop()
	}
}

// watching is the number of services watched now, for tests.
func (d *Discoverer) watching() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.watchers)
}

// Close stops every watch and waits for them. Open handles keep their last
// view; their Changes channels close and their waiting calls return
// ErrClosed. Close is idempotent and always returns nil.
func (d *Discoverer) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	d.closed = true
	ws := make([]*watcher, 0, len(d.watchers))
	for _, w := range d.watchers {
		ws = append(ws, w)
	}
	clear(d.watchers)
	sets := make([]*ServiceSet, 0, len(d.sets))
	for s := range d.sets {
		sets = append(sets, s)
	}
	clear(d.sets)
	d.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	for _, s := range sets {
		s.stop()
	}
	d.tel.close()
	return nil
}
