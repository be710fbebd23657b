package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/rosterkit/roster"
	"github.com/rosterkit/roster/internal/keys"
)

// env is the connection and output settings of one command line.
type env struct {
	stdout, stderr io.Writer

	endpoints      string
	cacert         string
	cert, key      string
	insecureSkip   bool
	user, password string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	namespace      string
	output         string
	watch          bool
	reason         string
}

// getenv returns the environment variable, or def when it is unset.
func getenv(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func durationEnv(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// newEnv returns the settings' defaults, taken from the environment as
// etcdctl's are.
func newEnv(stdout, stderr io.Writer) *env {
	return &env{
		stdout:         stdout,
		stderr:         stderr,
		endpoints:      getenv("ETCDCTL_ENDPOINTS", "127.0.0.1:2379"),
		cacert:         getenv("ETCDCTL_CACERT", ""),
		cert:           getenv("ETCDCTL_CERT", ""),
		key:            getenv("ETCDCTL_KEY", ""),
		insecureSkip:   getenv("ETCDCTL_INSECURE_SKIP_TLS_VERIFY", "") == "true",
		user:           getenv("ETCDCTL_USER", ""),
		password:       getenv("ETCDCTL_PASSWORD", ""),
		dialTimeout:    durationEnv("ETCDCTL_DIAL_TIMEOUT", 2*time.Second),
		commandTimeout: durationEnv("ETCDCTL_COMMAND_TIMEOUT", 5*time.Second),
		namespace:      getenv("ROSTER_NAMESPACE", roster.DefaultNamespace),
		output:         "table",
	}
}

// flagSet declares the flags every command takes, with the current
// settings as defaults, so flags given before the command stay in force.
func (e *env) flagSet(name, cmd string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&e.endpoints, "endpoints", e.endpoints, "comma-separated etcd endpoints (ETCDCTL_ENDPOINTS)")
	fs.StringVar(&e.cacert, "cacert", e.cacert, "CA bundle to verify etcd's certificate (ETCDCTL_CACERT)")
	fs.StringVar(&e.cert, "cert", e.cert, "client certificate (ETCDCTL_CERT)")
	fs.StringVar(&e.key, "key", e.key, "client key (ETCDCTL_KEY)")
	fs.BoolVar(&e.insecureSkip, "insecure-skip-tls-verify", e.insecureSkip, "do not verify etcd's certificate (ETCDCTL_INSECURE_SKIP_TLS_VERIFY)")
	fs.StringVar(&e.user, "user", e.user, "user name, or name:password (ETCDCTL_USER)")
	fs.StringVar(&e.password, "password", e.password, "password of --user (ETCDCTL_PASSWORD)")
	fs.DurationVar(&e.dialTimeout, "dial-timeout", e.dialTimeout, "how long to wait for a connection (ETCDCTL_DIAL_TIMEOUT)")
	fs.DurationVar(&e.commandTimeout, "command-timeout", e.commandTimeout, "how long one command may take, --watch excepted (ETCDCTL_COMMAND_TIMEOUT)")
	fs.StringVar(&e.namespace, "namespace", e.namespace, "roster's key namespace (ROSTER_NAMESPACE)")
	fs.StringVar(&e.output, "o", e.output, "output: table or json")
	switch cmd {
	case "instances":
		fs.BoolVar(&e.watch, "watch", false, "keep printing changes until interrupted")
	case "drain":
		e.reasonFlag(fs)
	}
	return fs
}

// parse reads the flags of args, which may come before and after positional
// arguments, and returns the positional ones.
func (e *env) parse(name string, args []string, cmd string) ([]string, error) {
	fs := e.flagSet(name, cmd, e.stderr)
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, errHelp
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if name == "roster" {
			// Top level: the first positional argument is the command;
			// its own flags follow it.
			return args, e.check()
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
	return rest, e.check()
}

func (e *env) check() error {
	switch e.output {
	case "table", "json":
	default:
		return fmt.Errorf("%w: -o %q: want table or json", errUsage, e.output)
	}
	if (e.cert == "") != (e.key == "") {
		return fmt.Errorf("%w: --cert and --key go together", errUsage)
	}
	if e.dialTimeout <= 0 || e.commandTimeout <= 0 {
		return fmt.Errorf("%w: timeouts must be positive", errUsage)
	}
	if err := keys.ValidateNamespace(e.namespace); err != nil {
		return fmt.Errorf("%w: --namespace: %v", errUsage, err)
	}
	return nil
}

// client connects to etcd as the flags say.
func (e *env) client() (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   strings.Split(e.endpoints, ","),
		DialTimeout: e.dialTimeout,
		Logger:      zap.NewNop(),
	}
	if e.user != "" {
		cfg.Username, cfg.Password = e.user, e.password
		if name, pw, ok := strings.Cut(e.user, ":"); ok {
			cfg.Username, cfg.Password = name, pw
		}
	}
	if e.cacert != "" || e.cert != "" || e.insecureSkip {
		tc := &tls.Config{InsecureSkipVerify: e.insecureSkip, MinVersion: tls.VersionTLS12}
		if e.cacert != "" {
			pem, err := os.ReadFile(e.cacert)
			if err != nil {
				return nil, fmt.Errorf("--cacert: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--cacert %s: no certificate in it", e.cacert)
			}
		}
		if e.cert != "" {
			pair, err := tls.LoadX509KeyPair(e.cert, e.key)
			if err != nil {
				return nil, fmt.Errorf("--cert/--key: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cfg.TLS = tc
		for i, ep := range cfg.Endpoints {
			if !strings.Contains(ep, "://") {
				cfg.Endpoints[i] = "https://" + ep
			}
		}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", e.endpoints, err)
	}
	return cli, nil
}

// withClient runs f with a client and a context bounded by the command
// timeout.
func (e *env) withClient(ctx context.Context, f func(ctx context.Context, cli *clientv3.Client) error) error {
	cli, err := e.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, e.commandTimeout)
	defer cancel()
	if err := f(ctx, cli); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("no answer from etcd at %s within %v: %w", e.endpoints, e.commandTimeout, err)
		}
		return err
	}
	return nil
}

// json writes v as indented JSON.
func (e *env) json(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonLine writes v as one line of JSON, for streams.
func (e *env) jsonLine(v any) error { return json.NewEncoder(e.stdout).Encode(v) }
