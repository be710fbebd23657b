// Package registry keeps service instances registered in etcd for as long
// as the process that registered them is alive, and no longer.
//
// A Registrar holds one lease and writes each instance under it at
// <namespace>/services/<service>/<id>, encoded by roster.EncodeInstance,
// where package discovery finds it. When the process dies, the lease
// expires after its TTL and every instance disappears; Close revokes it so
// they disappear at once.
//
//	reg, err := registry.New(cli) // cli is your *clientv3.Client
//	if err != nil { ... }
//	defer reg.Close(context.Background())
//
//	err = reg.Register(ctx, roster.Instance{Service: "users", ID: "pod-7", Addr: "10.0.0.7:8080"})
//	if errors.Is(err, registry.ErrDuplicate) { ... } // another live process holds users/pod-7
//
//	// graceful shutdown
//	reg.Drain(ctx, "users", "pod-7") // discovery stops picking it
//	// ... finish in-flight work ...
//	reg.Close(ctx)                    // gone now, not after the TTL
//
// # Healing
//
// An instance that is alive stays registered without help. The registrar
// presumes its lease lost at the send time of the last acknowledged
// renewal plus the TTL (less a margin), which is never later than etcd's
// own expiry, and as soon as etcd says the lease is gone. It also watches
// its services' prefixes, so a key deleted by someone else or a lease
// revoked by someone else is noticed within a round trip. Then it grants a
// new lease if needed and writes back every instance, retrying with
// jittered backoff (capped at one second by default) while etcd is
// unreachable: after a network partition, a leader change, an etcd
// restart, or a restore from a snapshot that lacks the lease.
//
// # Ownership
//
// Every write is one transaction that puts only if the key is absent or
// already held by one of this registrar's leases. A second process
// registering the same service and ID gets ErrDuplicate instead of
// silently taking the key over, and a registrar that finds another owner
// on one of its keys while restoring reports it (EventError, Status) and
// waits for the key to be freed rather than fight over it.
//
// # Observing
//
// Status returns whether every instance is in place under a live lease,
// why not, and since when, for a health endpoint. Events delivers what
// happened (registered, lost, restored, error) to an optional reader that
// the registrar never waits for.
package registry
