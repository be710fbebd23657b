package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster/embedded"
)

// leaveFlags are the command line of "roster-etcd leave", with etcdctl's
// names for the client side.
type leaveFlags struct {
	endpoints         []string
	name, id          string
	cacert, cert, key string
	user, password    string
	timeout           time.Duration
}

func parseLeave(args []string, stderr io.Writer) (*leaveFlags, error) {
	var f leaveFlags
	var endpoints string
	fs := flag.NewFlagSet("roster-etcd leave", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: roster-etcd leave --endpoints URL,… (--name NAME | --member-id ID) [flags]")
		fmt.Fprintln(stderr, "Removes a member from its cluster, as \"etcdctl member remove\" does; the member stops by itself.")
		fs.PrintDefaults()
	}
	fs.StringVar(&endpoints, "endpoints", "", "client URLs of the cluster (required)")
	fs.StringVar(&f.name, "name", "", "name of the member to remove")
	fs.StringVar(&f.id, "member-id", "", "ID of the member to remove, in hex as etcdctl prints it")
	fs.StringVar(&f.cacert, "cacert", "", "CA of the cluster's client certificates")
	fs.StringVar(&f.cert, "cert", "", "client certificate")
	fs.StringVar(&f.key, "key", "", "client key")
	fs.StringVar(&f.user, "user", "", "user name, or name:password")
	fs.StringVar(&f.password, "password", "", "password of --user")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait while the cluster refuses the change as unsafe")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return nil, usage("leave: unexpected argument %q", fs.Arg(0))
	case endpoints == "":
		return nil, usage("leave needs --endpoints")
	case (f.name == "") == (f.id == ""):
		return nil, usage("leave needs one of --name and --member-id")
	case (f.cert == "") != (f.key == ""):
		return nil, usage("leave: --cert and --key go together")
	case f.timeout <= 0:
		return nil, usage("leave: --timeout %v: want a positive duration", f.timeout)
	}
	if f.id != "" {
		if _, err := strconv.ParseUint(f.id, 16, 64); err != nil {
			return nil, usage("leave: --member-id %q: want a hex ID", f.id)
		}
	}
	if name, pw, ok := strings.Cut(f.user, ":"); ok {
		if f.password != "" {
			return nil, usage("leave: a password in --user and --password: give one")
		}
		f.user, f.password = name, pw
	}
	f.endpoints = strings.Split(endpoints, ",")
	return &f, nil
}

// leave removes the member named by f.
func leave(ctx context.Context, f *leaveFlags, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cfg := clientv3.Config{Endpoints: f.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx,
		Username: f.user, Password: f.password}
	tc, err := clientTLS(f.cert, f.key, f.cacert)
	if err != nil {
		return err
	}
	cfg.TLS = tc
	cli, err := clientv3.New(cfg)
	if err != nil {
		return fmt.Errorf("client of %v: %w", f.endpoints, err)
	}
	defer cli.Close()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("member list: %w", err)
	}
	var id uint64
	found := false
	for _, m := range list.Members {
		if (f.name != "" && m.Name == f.name) || (f.id != "" && memberID(m.ID) == strings.ToLower(strings.TrimLeft(f.id, "0"))) {
			id, found = m.ID, true
		}
	}
	if !found {
		return fmt.Errorf("no member %s%s in the cluster", f.name, f.id)
	}
	if err := embedded.RemoveMember(ctx, cli, id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed member %s (%s) from the cluster\n", f.name, memberID(id))
	return nil
}
