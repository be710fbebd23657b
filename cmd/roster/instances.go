package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
	"github.com/rosterkit/roster/registry"
)

// instanceRow is one instance as `roster instances` shows it.
type instanceRow struct {
	Service  string            `json:"service"`
	ID       string            `json:"id"`
	Addr     string            `json:"addr"`
	Status   string            `json:"status"`
	Weight   int               `json:"weight"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Lease    int64             `json:"lease"`
	Revision int64             `json:"revision"` // of the key's last change
	// DrainRequest is an operator's reason to drain the instance, while
	// one is pending ("roster drain"); its registrar applies it.
	DrainRequest *string `json:"drain_request,omitempty"`
}

func newRow(inst roster.Instance, lease, rev int64) instanceRow {
	status := string(inst.Status)
	if status == "" {
		status = string(roster.StatusServing)
	}
	return instanceRow{Service: inst.Service, ID: inst.ID, Addr: inst.Addr, Status: status,
		Weight: inst.EffectiveWeight(), Metadata: inst.Metadata, Lease: lease, Revision: rev}
}

func (r instanceRow) cells() []string {
	md := make([]string, 0, len(r.Metadata))
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		md = append(md, k+"="+r.Metadata[k])
	}
	status := r.Status
	if r.DrainRequest != nil {
		status += " (drain requested)"
	}
	return []string{r.ID, r.Addr, status, strconv.Itoa(r.Weight), fmt.Sprintf("%x", r.Lease), orDash(strings.Join(md, ","))}
}

var instanceHeader = []string{"ID", "ADDR", "STATUS", "WEIGHT", "LEASE", "METADATA"}

func runInstances(ctx context.Context, e *env, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: instances takes one SERVICE", errUsage)
	}
	service := args[0]
	if err := roster.ValidateName("service", service); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cli, err := e.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	prefix := keys.ServicePrefix(e.namespace, service)
	lctx, cancel := context.WithTimeout(ctx, e.commandTimeout)
	resp, err := cli.Get(lctx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return fmt.Errorf("list %s: no answer from etcd at %s: %w", service, e.endpoints, err)
	}
	var rows []instanceRow
	for _, kv := range resp.Kvs {
		_, id, ok := keys.ParseInstanceKey(e.namespace, string(kv.Key))
		if !ok {
			continue
		}
		if inst, err := roster.DecodeInstance(service, id, kv.Value); err == nil {
			rows = append(rows, newRow(inst, kv.Lease, kv.ModRevision))
		}
	}
	if rows == nil {
		rows = []instanceRow{}
	}
	if err := e.markDrains(ctx, cli, service, rows); err != nil {
		return err
	}
	if !e.watch {
		if e.output == "json" {
			return e.json(rows)
		}
		cells := make([][]string, len(rows))
		for i, r := range rows {
			cells[i] = r.cells()
		}
		return table(e.stdout, instanceHeader, cells)
	}
	return e.follow(ctx, cli, service, prefix, rows, resp.Header.Revision)
}

// change is one line of `roster instances --watch -o json`.
type change struct {
	Change   string       `json:"change"` // "present" (the first listing), "added", "updated" or "removed"
	Time     time.Time    `json:"time"`
	Instance *instanceRow `json:"instance,omitempty"`
	ID       string       `json:"id"`
	Revision int64        `json:"revision"`
}

// follow prints rows, then every change from rev+1 until ctx ends.
func (e *env) follow(ctx context.Context, cli *clientv3.Client, service, prefix string, rows []instanceRow, rev int64) error {
	known := map[string]bool{}
	print := func(c change) error {
		if e.output == "json" {
			return e.jsonLine(c)
		}
		var cells []string
		if c.Instance != nil {
			cells = c.Instance.cells()
		} else {
			cells = []string{c.ID, "", "", "", "", ""}
		}
		_, err := fmt.Fprintf(e.stdout, "%s  %-8s %s\n", c.Time.Format("15:04:05.000"), c.Change, strings.TrimSpace(strings.Join(cells, "  ")))
		return err
	}
	if e.output == "table" {
		cells := make([][]string, len(rows))
		for i, r := range rows {
			cells[i] = r.cells()
		}
		if err := table(e.stdout, instanceHeader, cells); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "watching %s from revision %d; Ctrl-C to stop\n", service, rev+1)
	}
	for i := range rows {
		known[rows[i].ID] = true
		if e.output == "json" {
			if err := print(change{Change: "present", Time: time.Now(), Instance: &rows[i], ID: rows[i].ID, Revision: rows[i].Revision}); err != nil {
				return err
			}
		}
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("watch %s: %w", service, err)
		}
		for _, ev := range resp.Events {
			_, id, ok := keys.ParseInstanceKey(e.namespace, string(ev.Kv.Key))
			if !ok {
				continue
			}
			c := change{Time: time.Now(), ID: id, Revision: ev.Kv.ModRevision}
			inst, err := roster.DecodeInstance(service, id, ev.Kv.Value)
			switch {
			case ev.Type == clientv3.EventTypeDelete || err != nil:
				if !known[id] {
					continue
				}
				delete(known, id)
				c.Change = "removed"
			default:
				r := newRow(inst, ev.Kv.Lease, ev.Kv.ModRevision)
				c.Instance = &r
				c.Change = "added"
				if known[id] {
					c.Change = "updated"
				}
				known[id] = true
			}
			if err := print(c); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted: the normal end of a watch
	}
	return fmt.Errorf("watch %s: ended: etcd at %s unreachable", service, e.endpoints)
}

// markDrains notes the pending drain requests of rows' instances.
func (e *env) markDrains(ctx context.Context, cli *clientv3.Client, service string, rows []instanceRow) error {
	ctx, cancel := context.WithTimeout(ctx, e.commandTimeout)
	defer cancel()
	reqs, err := registry.DrainRequests(ctx, cli, registry.WithNamespace(e.namespace))
	if err != nil {
		return err
	}
	for _, req := range reqs {
		for i := range rows {
			if req.Service == service && rows[i].ID == req.ID {
				reason := req.Reason
				rows[i].DrainRequest = &reason
			}
		}
	}
	return nil
}
