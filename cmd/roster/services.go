package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
)

// serviceRow is one service as `roster services` shows it.
type serviceRow struct {
	Service   string `json:"service"`
	Instances int    `json:"instances"`
	Serving   int    `json:"serving"`
	Draining  int    `json:"draining"`
	Invalid   int    `json:"invalid"` // keys under the service that are not valid instances
}

func runServices(ctx context.Context, e *env, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: services takes no arguments", errUsage)
	}
	return e.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		resp, err := cli.Get(ctx, keys.ServicesPrefix(e.namespace), clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		byName := map[string]*serviceRow{}
		for _, kv := range resp.Kvs {
			svc, id, ok := keys.ParseInstanceKey(e.namespace, string(kv.Key))
			if !ok {
				continue
			}
			row := byName[svc]
			if row == nil {
				row = &serviceRow{Service: svc}
				byName[svc] = row
			}
			inst, err := roster.DecodeInstance(svc, id, kv.Value)
			switch {
			case err != nil:
				row.Invalid++
				continue
			case inst.Serving():
				row.Serving++
			default:
				row.Draining++
			}
			row.Instances++
		}
		rows := make([]serviceRow, 0, len(byName))
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			rows = append(rows, *byName[name])
		}
		if e.output == "json" {
			return e.json(rows)
		}
		cells := make([][]string, len(rows))
		for i, r := range rows {
			cells[i] = []string{r.Service, strconv.Itoa(r.Instances), strconv.Itoa(r.Serving), strconv.Itoa(r.Draining), strconv.Itoa(r.Invalid)}
		}
		return table(e.stdout, []string{"SERVICE", "INSTANCES", "SERVING", "DRAINING", "INVALID"}, cells)
	})
}
