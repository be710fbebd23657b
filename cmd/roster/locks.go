package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rosterkit/roster/internal/keys"
)

// lockEntry is one holder or waiter of a lock.
type lockEntry struct {
	Key   string `json:"key"`
	Lease int64  `json:"lease"`
	Token int64  `json:"token"`          // the key's create revision
	Mode  string `json:"mode,omitempty"` // "read" or "write", for RW locks
}

// lockRow is one lock as `roster locks` shows it.
type lockRow struct {
	Lock    string      `json:"lock"`
	Kind    string      `json:"kind"`            // mutex, semaphore or rwlock
	Limit   int         `json:"limit,omitempty"` // a semaphore's permits, as its oldest key records
	Holders []lockEntry `json:"holders"`
	Waiters []lockEntry `json:"waiters"`
}

func entryOf(kv *mvccpb.KeyValue, mode string) lockEntry {
	return lockEntry{Key: string(kv.Key), Lease: kv.Lease, Token: kv.CreateRevision, Mode: mode}
}

// split puts the first n of g among the holders, the rest among the waiters.
func split(row *lockRow, g []*mvccpb.KeyValue, n int, mode func(*mvccpb.KeyValue) string) {
	row.Holders, row.Waiters = []lockEntry{}, []lockEntry{}
	for i, kv := range g {
		if i < n {
			row.Holders = append(row.Holders, entryOf(kv, mode(kv)))
		} else {
			row.Waiters = append(row.Waiters, entryOf(kv, mode(kv)))
		}
	}
}

func noMode(*mvccpb.KeyValue) string { return "" }

func runLocks(ctx context.Context, e *env, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: locks takes no arguments", errUsage)
	}
	return e.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		var rows []lockRow
		for _, kind := range []string{"mutex", "semaphore", "rwlock"} {
			prefix := map[string]string{
				"mutex":     keys.LocksPrefix(e.namespace),
				"semaphore": keys.SemaphoresPrefix(e.namespace),
				"rwlock":    keys.RWLocksPrefix(e.namespace),
			}[kind]
			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
			if err != nil {
				return fmt.Errorf("list %s keys: %w", kind, err)
			}
			groups := groupByName(resp.Kvs, prefix)
			for _, name := range slices.Sorted(maps.Keys(groups)) {
				g := groups[name]
				row := lockRow{Lock: name, Kind: kind}
				switch kind {
				case "mutex":
					split(&row, g, 1, noMode)
				case "semaphore":
					// The oldest key's value is the limit in force.
					row.Limit, _ = strconv.Atoi(string(g[0].Value))
					split(&row, g, max(row.Limit, 1), noMode)
				case "rwlock":
					split(&row, g, readersAhead(prefix, name, g), rwMode(prefix, name))
				}
				rows = append(rows, row)
			}
		}
		if rows == nil {
			rows = []lockRow{}
		}
		if e.output == "json" {
			return e.json(rows)
		}
		cells := make([][]string, len(rows))
		for i, r := range rows {
			kind := r.Kind
			if r.Limit > 0 {
				kind += "(" + strconv.Itoa(r.Limit) + ")"
			}
			cells[i] = []string{r.Lock, kind, entries(r.Holders), entries(r.Waiters)}
		}
		return table(e.stdout, []string{"LOCK", "KIND", "HOLDERS (lease:token)", "WAITERS (lease:token)"}, cells)
	})
}

// rwMode says whether an RW lock key is a reader's or a writer's; anything
// but a reader's key counts as a writer, as package lock treats it.
func rwMode(prefix, name string) func(*mvccpb.KeyValue) string {
	return func(kv *mvccpb.KeyValue) string {
		if strings.HasPrefix(string(kv.Key), prefix+name+"/read-") {
			return "read"
		}
		return "write"
	}
}

// readersAhead is how many keys of an RW lock hold it: a writer alone, or
// every reader ahead of the first writer.
func readersAhead(prefix, name string, g []*mvccpb.KeyValue) int {
	mode := rwMode(prefix, name)
	if mode(g[0]) == "write" {
		return 1
	}
	n := 0
	for n < len(g) && mode(g[n]) == "read" {
		n++
	}
	return n
}

func entries(es []lockEntry) string {
	if len(es) == 0 {
		return "-"
	}
	parts := make([]string, len(es))
	for i, en := range es {
		parts[i] = fmt.Sprintf("%x:%d", en.Lease, en.Token)
		if en.Mode != "" {
			parts[i] = en.Mode + " " + parts[i]
		}
	}
	return strings.Join(parts, ", ")
}
