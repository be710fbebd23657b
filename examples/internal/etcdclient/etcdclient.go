// Package etcdclient connects the demo's commands to an etcd cluster run
// elsewhere, saying what it waits for and giving up after a stated time.
package etcdclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Connect returns a client of endpoints once etcd has answered a
// linearizable read (so a leader and a quorum serve), or an error once
// timeout has passed or ctx ended. say, if not nil, is told what happens.
func Connect(ctx context.Context, endpoints []string, timeout time.Duration, say func(string)) (*clientv3.Client, error) {
	if say == nil {
		say = func(string) {}
	}
	if len(endpoints) == 0 || endpoints[0] == "" {
		return nil, errors.New("no etcd endpoint given")
	}
	where := strings.Join(endpoints, ",")
	say(fmt.Sprintf("connecting to etcd at %s (giving up after %v)", where, timeout))
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd at %s: %w", where, err)
	}
	if err := Wait(ctx, cli, timeout, say); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

// Wait waits until cli's cluster answers a linearizable read, saying so
// once a second has gone by without an answer.
func Wait(ctx context.Context, cli *clientv3.Client, timeout time.Duration, say func(string)) error {
	if say == nil {
		say = func(string) {}
	}
	where := strings.Join(cli.Endpoints(), ",")
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	told := false
	for {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(actx, "\x00roster-demo-probe", clientv3.WithCountOnly())
		acancel()
		if err == nil {
			if told {
				say(fmt.Sprintf("etcd at %s answered after %v", where, time.Since(start).Round(100*time.Millisecond)))
			}
			return nil
		}
		if parent.Err() != nil {
			return fmt.Errorf("stopped while waiting for etcd at %s: %w", where, parent.Err())
		}
		if ctx.Err() != nil {
			return fmt.Errorf("etcd at %s did not answer within %v: %w (%s)", where, timeout, err, reach(cli.Endpoints()))
		}
		if !told {
			told = true
			say(fmt.Sprintf("etcd at %s does not answer yet (%s); still trying", where, reach(cli.Endpoints())))
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// reach tells, for an error message, whether the endpoints take TCP
// connections at all: clientv3 only says its deadline passed.
func reach(endpoints []string) string {
	var parts []string
	for _, ep := range endpoints {
		host := ep
		if _, rest, ok := strings.Cut(ep, "://"); ok {
			host = rest
		}
		c, err := net.DialTimeout("tcp", host, 500*time.Millisecond)
		if err != nil {
			parts = append(parts, err.Error())
			continue
		}
		c.Close()
		parts = append(parts, host+" takes connections but does not answer as etcd")
	}
	return strings.Join(parts, "; ")
}
