// Package roster holds what the roster packages share: the Instance model
// and its encoding as an etcd value, the rules for names, the defaults, and
// the errors every package wraps.
//
// Roster coordinates services through etcd over a *clientv3.Client the
// application owns. Package registry keeps instances registered for as long
// as the process lives; discovery keeps a live view of a service and picks
// instances; election elects one leader; lock excludes; session keeps the
// leases the others hang their keys on; embedded (a module of its own) runs
// etcd inside a process.
//
// # One vocabulary
//
// A concept has one name and one shape in every package:
//
//   - Fencing token: Token() int64 on every handle that has one (a lock
//     Hold, an election Leadership), Leader.Token when observing: the key's
//     create revision, never smaller for a later holder.
//   - Guard: Guard() clientv3.Cmp, true in etcd while the handle holds.
//     Fenced writes are Txn(ctx) and Do(ctx, ops...), which etcd applies
//     only under the guard.
//   - Loss: a handle that can be lost has Done() <-chan struct{} and
//     Err() error. After a loss its Err wraps ErrLost and the cause (lease
//     expired or revoked, key deleted). A voluntary end (Release, Resign,
//     Close) has its own error and does not wrap ErrLost.
//   - Ending: Close() error on every type that starts goroutines or holds
//     something in etcd; it is idempotent, waits for what it started, and is
//     bounded by the type's TTL even when etcd does not answer. Types that
//     give something back to etcd also have Shutdown(ctx) error, the same
//     release bounded by the caller.
//   - State streams: a method that takes a context and returns a channel
//     (Registrar.Events, Cache.Changes, Election.Observe). Each call gets a
//     channel of its own, so no item is split between readers; a slow reader
//     gets older items merged or skipped but always the newest; the channel
//     closes when the context ends or the owner closes.
//   - Options: functional options with the same names and meanings wherever
//     the concept exists: WithNamespace, WithTTL, WithBackoff,
//     WithProgressInterval, WithSessionManager, WithLogger,
//     WithMeterProvider. A zero value means the default (DefaultTTL,
//     DefaultBackoffMin..DefaultBackoffMax, DefaultProgressInterval, no
//     logging, OpenTelemetry's global meter provider); a negative or
//     otherwise impossible value is an error wrapping ErrInvalidOption.
//   - Errors: package errors carry a "pkg:" prefix and wrap the shared
//     sentinels here (registry.ErrClosed wraps ErrClosed), so errors.Is
//     works at either level. A nil client is ErrNilClient, never a panic.
//
// # Key layout
//
// All keys live under a namespace, DefaultNamespace unless configured, so
// several applications can share one etcd cluster:
//
//	<namespace>/services/<service>/<id>        an Instance, encoded by EncodeInstance
//	<namespace>/elections/<name>/<lease hex>   one election candidate
//	<namespace>/locks/<name>/<lease hex>       one mutex waiter or holder
//
// <lease hex> is the etcd lease ID in lowercase hexadecimal, as etcd's
// concurrency package writes it, so elections and mutexes interoperate with
// concurrency.NewElection, concurrency.NewMutex and etcdctl elect/lock given
// the prefix <namespace>/elections/<name> or <namespace>/locks/<name>.
//
// Service names, instance IDs, election and lock names are single key
// segments and must pass ValidateName. Instance values are versioned JSON;
// see EncodeInstance and DecodeInstance.
package roster
