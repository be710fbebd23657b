// Command roster shows and steers what roster keeps in etcd: services and
// their instances, election leaders, lock holders and waiters, and the
// cluster's health; and it drains an instance from outside, as an operator
// takes it out of rotation without logging into its host.
//
//	roster services
//	roster instances users --watch
//	roster leaders
//	roster locks
//	roster drain users users-7      # its registrar marks it draining
//	roster undrain users users-7
//	roster status
//
// Connection flags and their environment variables are etcdctl's:
// --endpoints (ETCDCTL_ENDPOINTS), --cacert, --cert, --key, --user,
// --password, --dial-timeout, --command-timeout. --namespace
// (ROSTER_NAMESPACE) is roster's key namespace. Output is a table, or JSON
// with -o json. Exit status: 0 done, 1 failed (etcd unreachable, an
// unhealthy cluster), 2 bad command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks a bad command line: exit status 2.
var errUsage = errors.New("usage")

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"services", "", "services registered in the namespace, with their instance counts", runServices},
	{"instances", "SERVICE [--watch]", "the instances of a service; --watch follows changes", runInstances},
	{"leaders", "", "every election: its leader, fencing token and candidates", runLeaders},
	{"locks", "", "every mutex, semaphore and RW lock: holders, waiters and their tokens", runLocks},
	{"drain", "SERVICE ID [--reason TEXT]", "ask the instance's registrar to mark it draining", runDrain},
	{"undrain", "SERVICE ID", "cancel a drain request", runUndrain},
	{"status", "", "cluster health, members and revision", runStatus},
}

// run runs one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "roster:", err)
		fmt.Fprintln(stderr, "run 'roster help' for the commands and their flags")
		return 2
	default:
		fmt.Fprintln(stderr, "roster:", err)
		return 1
	}
}

var errHelp = errors.New("help shown")

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := newEnv(stdout, stderr)
	rest, err := e.parse("roster", args, "")
	if err != nil {
		return err
	}
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		usage(stdout)
		return errHelp
	}
	for _, c := range commands {
		if c.name != rest[0] {
			continue
		}
		sub, err := e.parse("roster "+c.name, rest[1:], c.name)
		if err != nil {
			return err
		}
		return c.run(ctx, e, sub)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, rest[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: roster [flags] COMMAND [ARGS] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-28s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "flags (etcdctl's names and ETCDCTL_* environment variables):")
	newEnv(w, w).flagSet("roster", "", w).PrintDefaults()
}
