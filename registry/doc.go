// Package registry keeps service instances registered in etcd for as long
// as the process that registered them is alive, and no longer.
//
// A Registrar holds one lease and writes each instance under it at
// <namespace>/services/<service>/<id>, encoded by roster.EncodeInstance,
// where package discovery finds it. When the process dies the lease expires
// after its TTL and its instances disappear; Close revokes the lease so
// that they disappear at once.
//
//	reg, err := registry.New(cli) // cli is your *clientv3.Client
//	if err != nil { ... }
//	defer reg.Close()
//
//	err = reg.Register(ctx, roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080"})
//	if errors.Is(err, registry.ErrDuplicate) { ... } // another live process holds users/pod-7
//
//	// graceful shutdown
//	reg.Drain(ctx, "users", "pod-7") // discovery stops picking it
//	// ... finish in-flight work ...
//	reg.Shutdown(ctx)                // gone now, not after the TTL
//
// # Healing
//
// An instance that is alive stays registered without help. The registrar
// presumes its lease lost at the send time of the last acknowledged renewal
// plus the TTL (less a margin), which is never later than etcd's own
// expiry, and as soon as etcd says the lease is gone. It also watches its
// services' prefixes, so a key deleted or a lease revoked by someone else is
// noticed within a round trip. Then it grants a new lease if needed and
// writes back every instance, retrying with jittered backoff while etcd is
// unreachable: after a partition, a leader change, an etcd restart, or a
// restore from a snapshot that lacks the lease.
//
// The watches outlive the restore, so a key deleted just after it is
// written back as fast as on a settled registration. Only when etcd's
// revisions went backwards (a restore from an older snapshot) are they
// started again, from the restore's first write.
//
// A write that got no reply may have landed all the same, even after the
// call gave up and after what was written since (a partition held it): a
// new instance's key is deleted again in the background, an update or a
// delete is written over with the value the registrar kept, and the watch
// takes a write under the registrar's lease for its own only if it carries
// a value it wrote; any other is written over, or deleted if no instance is
// behind it.
//
// # Ownership
//
// Every write is one transaction that puts only if the key is absent or
// already held by one of this registrar's leases. A second process
// registering the same service and ID gets ErrDuplicate instead of taking
// the key over, and a registrar that finds another owner on one of its
// keys while restoring reports it (EventError, Status) and waits for the
// key to be freed rather than fight over it.
//
// # Operator drain
//
// An operator (a CLI, a script, etcdctl) takes an instance out of rotation
// from outside, without logging into its host, by writing the key
//
//	<namespace>/drain/<service>/<id>   value: the reason, free text
//
// with RequestDrain, and brings it back with CancelDrain; DrainRequests
// lists them. The registrar holding the instance watches its services'
// drain keys and writes the instance roster.StatusDraining itself, so it
// stays the only writer of the instance's key; then it tells its
// application with EventDrainRequested (EventUndrainRequested once
// cancelled), so that it can finish its work and shut down. The request
// has no lease: it outlives the registrar, and a registrar started again
// registers the instance draining from its first write. Cancelling it gives
// the instance back the status its application gave it: an application's
// own Drain is not undone.
//
// # Observing
//
// Status says whether every instance is in place under a live lease, why
// not, and since when, for a health endpoint. Events(ctx) gives each caller
// its own channel of what happens (registered, lost, restored, error, drain
// requested); the registrar never waits for a reader, and one that falls
// behind loses the oldest events, never the newest.
//
// # Logs and metrics
//
// WithLogger logs state changes only, never one record per registration or
// renewal: a lease lost, and restored (with how long it took); a key
// deleted by someone else, and restored; a key held by another owner; the
// first failed attempt of an outage; a drain requested or cancelled; the
// drain requests' watch out of date, and current again.
//
// WithMeterProvider records roster.registry.instances (an up-down counter
// of the instances kept registered, by service), roster.registry.renewals,
// roster.registry.losses and roster.registry.restores (by scope: lease or
// instance), roster.registry.heal.duration (seconds from a loss to its
// repair, by scope) and roster.registry.conflicts (by service).
//
// # Options and ending
//
// A zero option means its default: WithTTL(0) is roster.DefaultTTL,
// WithNamespace("") is roster.DefaultNamespace, WithBackoff(0, 0) is
// roster.DefaultBackoffMin to roster.DefaultBackoffMax, a nil logger
// discards, a nil meter provider is OpenTelemetry's global one. A negative
// or out-of-range value (a TTL below roster.MinTTL, a backoff max below its
// min) makes New fail with an error wrapping roster.ErrInvalidOption; a nil
// client, with roster.ErrNilClient.
//
// Close revokes the lease, so the instances go at once, and waits for the
// registrar's goroutines. It never waits for etcd much longer than the TTL:
// by then an unrenewed lease has expired anyway. Shutdown does the same
// within a context of the caller's as well. Calls after Close fail with
// ErrClosed, which wraps roster.ErrClosed; calls on a closed etcd client
// fail at once with an error wrapping roster.ErrClosed too.
package registry
