package main

import (
	"context"
	"flag"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/registry"
)

// drainArgs checks SERVICE ID.
func drainArgs(cmd string, args []string) (service, id string, err error) {
	if len(args) != 2 {
		return "", "", fmt.Errorf("%w: %s takes SERVICE ID", errUsage, cmd)
	}
	if err := roster.ValidateName("service", args[0]); err != nil {
		return "", "", fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := roster.ValidateName("instance ID", args[1]); err != nil {
		return "", "", fmt.Errorf("%w: %v", errUsage, err)
	}
	return args[0], args[1], nil
}

// runDrain asks the registrar that holds the instance to mark it draining:
// the registrar stays the only writer of its instance's key.
func runDrain(ctx context.Context, e *env, args []string) error {
	service, id, err := drainArgs("drain", args)
	if err != nil {
		return err
	}
	return e.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		if err := registry.RequestDrain(ctx, cli, service, id, e.reason, registry.WithNamespace(e.namespace)); err != nil {
			return err
		}
		return e.confirm("drain requested", service, id)
	})
}

func runUndrain(ctx context.Context, e *env, args []string) error {
	service, id, err := drainArgs("undrain", args)
	if err != nil {
		return err
	}
	return e.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		if err := registry.CancelDrain(ctx, cli, service, id, registry.WithNamespace(e.namespace)); err != nil {
			return err
		}
		return e.confirm("drain cancelled", service, id)
	})
}

func (e *env) confirm(what, service, id string) error {
	if e.output == "json" {
		return e.json(map[string]string{"result": what, "service": service, "id": id})
	}
	_, err := fmt.Fprintf(e.stdout, "%s for %s/%s; its registrar applies it\n", what, service, id)
	return err
}

// reasonFlag adds drain's --reason.
func (e *env) reasonFlag(fs *flag.FlagSet) {
	fs.StringVar(&e.reason, "reason", e.reason, "why, for the instance's owner and the status page")
}
