package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/internal/obs"
	"github.com/rosterkit/roster/internal/watch"
)

// An operator drains an instance from outside by writing a key of its own,
// <namespace>/drain/<service>/<id>, whose value is the reason. The
// registrar that holds the instance watches its services' drain keys and
// writes its instance draining itself, so it stays the only writer of the
// instance's key. The request is no registration: it has no lease and
// stays until cancelled, so a registrar started again registers the
// instance draining from its first write.

// MaxDrainReason is the longest reason RequestDrain accepts, in bytes.
const MaxDrainReason = 1024

// RequestDrain asks the registrar that holds service/id to drain it: the
// instance is written draining, so discovery stops picking it, and the
// application gets EventDrainRequested, to shut down gracefully. The
// request stays until CancelDrain, across restarts of the registrar, and
// may come before the instance is registered. Of opts only WithNamespace
// matters.
func RequestDrain(ctx context.Context, cli *clientv3.Client, service, id, reason string, opts ...Option) error {
	key, err := drainKey(cli, service, id, opts)
	if err != nil {
		return err
	}
	if len(reason) > MaxDrainReason || !utf8.ValidString(reason) {
		return fmt.Errorf("registry: drain reason: %w: not UTF-8 or longer than %d bytes", roster.ErrInvalidValue, MaxDrainReason)
	}
	if _, err := cli.Put(orBackground(ctx), key, reason); err != nil {
		return fmt.Errorf("registry: request drain of %s/%s: %w", service, id, err)
	}
	return nil
}

// CancelDrain withdraws a request to drain service/id: the instance gets
// the status its application gave it again, and the application
// EventUndrainRequested. Cancelling no request is no error.
func CancelDrain(ctx context.Context, cli *clientv3.Client, service, id string, opts ...Option) error {
	key, err := drainKey(cli, service, id, opts)
	if err != nil {
		return err
	}
	if _, err := cli.Delete(orBackground(ctx), key); err != nil {
		return fmt.Errorf("registry: cancel drain of %s/%s: %w", service, id, err)
	}
	return nil
}

// DrainRequest is an operator's request to drain one instance.
type DrainRequest struct {
	Service, ID string
	Reason      string
	Revision    int64 // etcd's revision of the request
}

// DrainRequests lists the requests to drain instances, by service and ID,
// whether or not the instances are registered. Of opts only WithNamespace
// matters.
func DrainRequests(ctx context.Context, cli *clientv3.Client, opts ...Option) ([]DrainRequest, error) {
	o, err := operatorOptions(cli, opts)
	if err != nil {
		return nil, err
	}
	resp, err := cli.Get(orBackground(ctx), keys.DrainsPrefix(o.ns), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("registry: list drain requests: %w", err)
	}
	out := make([]DrainRequest, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if service, id, ok := keys.ParseDrainKey(o.ns, string(kv.Key)); ok {
			out = append(out, DrainRequest{Service: service, ID: id, Reason: reasonOf(kv.Value), Revision: kv.ModRevision})
		}
	}
	return out, nil
}

func operatorOptions(cli *clientv3.Client, opts []Option) (options, error) {
	if cli == nil {
		return options{}, fmt.Errorf("registry: %w", roster.ErrNilClient)
	}
	if cctx := cli.Ctx(); cctx == nil {
		return options{}, fmt.Errorf("registry: %w: not made by clientv3.New", roster.ErrNilClient)
	} else if cctx.Err() != nil {
		return options{}, fmt.Errorf("registry: %w", errClientClosed)
	}
	return newOptions(opts)
}

func drainKey(cli *clientv3.Client, service, id string, opts []Option) (string, error) {
	o, err := operatorOptions(cli, opts)
	if err != nil {
		return "", err
	}
	if err := roster.ValidateName("service", service); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	if err := roster.ValidateName("instance ID", id); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	return keys.DrainKey(o.ns, service, id), nil
}

// reasonOf reads a drain key's value, which anyone may have written.
func reasonOf(v []byte) string {
	s := strings.ToValidUTF8(string(v[:min(len(v), MaxDrainReason)]), "\uFFFD")
	return s
}

// drainsInterval is how many TTLs the drain requests' watch may stay silent
// before it is checked with a read: the requests are rare and not urgent
// to the second, and a check per TTL would add a third to the requests a
// registrar makes (one renewal per third of a TTL).
const drainsInterval = 3

// errDrainsStale is wrapped by the staleness reported for a service's
// drain requests.
var errDrainsStale = errors.New("registry: drain requests")

// drains follows one service's drain requests for the registrar: the
// handler of a watch.Follower on the service's drain prefix.
type drains struct {
	r       *Registrar
	service string
	f       *watch.Follower
	ids     map[string]string // id → reason; guarded by r.mu
	err     error             // last reported by the follower; guarded by r.mu
}

// followDrainsLocked starts following service's drain requests. r.mu must
// be held.
func (r *Registrar) followDrainsLocked(service string) {
	d := &drains{r: r, service: service, ids: map[string]string{}}
	r.drains[service] = d
	d.f = watch.Start(watch.Config{
		Client:   r.cli,
		Prefix:   keys.DrainPrefix(r.opts.ns, service),
		What:     fmt.Sprintf("drain requests of %q", service),
		Interval: drainsInterval * r.opts.ttl,
		Backoff:  r.opts.backoff,
		Stale:    errDrainsStale,
		Closed:   errClientClosed,
	}, d)
}

// drainsSynced waits until service's drain requests have been read once,
// so that a first registration is written draining if it was asked to be.
func (r *Registrar) drainsSynced(ctx context.Context, service string) error {
	r.mu.Lock()
	d := r.drains[service]
	r.mu.Unlock()
	if d == nil {
		return nil
	}
	select {
	case <-d.f.Synced():
		return nil
	case <-d.f.Done():
		return fmt.Errorf("registry: %w", errClientClosed)
	case <-r.cli.Ctx().Done():
		return fmt.Errorf("registry: %w", errClientClosed)
	case <-r.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("registry: reading drain requests of %s: %w", service, ctx.Err())
	}
}

func (d *drains) Reset(kvs []*mvccpb.KeyValue, _ int64) {
	r := d.r
	ids := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		if service, id, ok := keys.ParseDrainKey(r.opts.ns, string(kv.Key)); ok && service == d.service {
			ids[id] = reasonOf(kv.Value)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.drains[d.service] != d {
		return // replaced
	}
	d.ids = ids
	for _, e := range r.entries {
		if e.service == d.service {
			reason, on := ids[e.id]
			r.requestLocked(e, on, reason)
		}
	}
}

func (d *drains) Apply(evs []*clientv3.Event, _ int64) {
	r := d.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.drains[d.service] != d {
		return
	}
	for _, ev := range evs {
		service, id, ok := keys.ParseDrainKey(r.opts.ns, string(ev.Kv.Key))
		if !ok || service != d.service {
			continue
		}
		on, reason := ev.Type != clientv3.EventTypeDelete, reasonOf(ev.Kv.Value)
		if on {
			d.ids[id] = reason
		} else {
			delete(d.ids, id)
		}
		if e := r.entries[keys.InstanceKey(r.opts.ns, service, id)]; e != nil {
			r.requestLocked(e, on, reason)
		}
	}
}

func (d *drains) Confirm(int64) {}

func (d *drains) SetErr(err error) {
	r := d.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if (err == nil) == (d.err == nil) {
		d.err = err
		return
	}
	d.err = err
	if err != nil {
		r.log.Warn("registry: drain requests may be out of date", slog.String(obs.KeyService, d.service), slog.Any(obs.KeyErr, err))
	} else {
		r.log.Info("registry: drain requests current again", slog.String(obs.KeyService, d.service))
	}
}

// requestLocked records whether an operator asks for e to be drained, and
// has it written so. r.mu must be held.
func (r *Registrar) requestLocked(e *entry, on bool, reason string) {
	if e.removed || e.drain == on {
		if on {
			e.reason = reason
		}
		return
	}
	e.drain, e.reason = on, reason
	if !e.registered {
		return // its first write, in flight, applies it when it returns
	}
	e.notify = true
	r.revalueLocked(e)
	if !e.dirty {
		r.toldLocked(e) // written so already (drained by its application)
	}
}

// revalueLocked re-encodes e's value for the operator's request and has the
// recovery loop write it. r.mu must be held.
func (r *Registrar) revalueLocked(e *entry) {
	if v, err := roster.EncodeInstance(e.effective()); err == nil && string(v) != e.val {
		e.val, e.dirty = string(v), true
		r.poke()
	}
}

// toldLocked tells the application of a drain request, or of its
// cancellation, once the instance is written so. r.mu must be held.
func (r *Registrar) toldLocked(e *entry) {
	if !e.notify {
		return
	}
	e.notify = false
	id := []any{slog.String(obs.KeyService, e.service), slog.String(obs.KeyID, e.id)}
	if e.drain {
		r.log.Info("registry: drain requested", append(id, slog.String("reason", e.reason))...)
		r.emit(Event{Kind: EventDrainRequested, Service: e.service, ID: e.id, Reason: e.reason})
	} else {
		r.log.Info("registry: drain request cancelled", id...)
		r.emit(Event{Kind: EventUndrainRequested, Service: e.service, ID: e.id})
	}
}
