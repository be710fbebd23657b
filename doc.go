// Package roster holds the vocabulary shared by the roster packages: the
// Instance model, its encoding as an etcd value, and the rules for names.
//
// Roster is a toolkit for coordinating services through etcd. It does not
// own a connection: every package works over a *clientv3.Client the
// application creates and closes. Package registry keeps an instance
// registered under a lease for as long as the process lives; package
// discovery watches a service and keeps an up-to-date list of its
// instances for picking; package election elects one leader among
// candidates; package lock provides distributed mutual exclusion; package
// session manages the etcd leases the others hang their keys on; and
// package embedded starts an in-process etcd server for tests and
// single-binary deployments.
//
// # Key layout
//
// All keys live under a namespace, "/roster" unless configured otherwise,
// so several applications can share one etcd cluster:
//
//	<namespace>/services/<service>/<id>        an Instance, encoded by EncodeInstance
//	<namespace>/elections/<name>/<lease hex>   one election candidate
//	<namespace>/locks/<name>/<lease hex>       one lock waiter or holder
//
// <lease hex> is the etcd lease ID in lowercase hexadecimal, as written by
// etcd's concurrency package, so elections and locks interoperate with
// concurrency.NewElection, concurrency.NewMutex and etcdctl given the
// prefix <namespace>/elections/<name> or <namespace>/locks/<name>.
//
// Service names, instance IDs, election names and lock names are single
// key segments and must pass ValidateName. Instance values are versioned
// JSON; see EncodeInstance and DecodeInstance.
package roster
