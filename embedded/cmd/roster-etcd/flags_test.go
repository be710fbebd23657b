package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rosterkit/roster/embedded"
	"github.com/rosterkit/roster/internal/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.Main(m) }

// TestFlags holds every refused combination to a clear message and exit
// status 2, and checks what accepted ones mean.
func TestFlags(t *testing.T) {
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("secret\n"), 0o600))
		return p
	}
	cert, key, ca, pw := file("cert.pem"), file("key.pem"), file("ca.pem"), file("pw")
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	cluster := "a=http://127.0.0.1:2380,b=http://127.0.0.1:2382"
	tlsCluster := "a=https://127.0.0.1:2380,b=https://127.0.0.1:2382"

	refused := []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--listen-client-urls", "http://a:1,http://b:2"}, "one URL only"},
		{[]string{"--listen-client-urls", "127.0.0.1:2379"}, "want http://host:port"},
		{[]string{"--listen-client-urls", "unix://x:1"}, "want http or https"},
		{[]string{"--listen-client-urls", "https://127.0.0.1:2379"}, "https needs TLS files (--cert-file"},
		{[]string{"--listen-peer-urls", "https://127.0.0.1:2380"}, "--peer-cert-file"},
		{[]string{"--cert-file", cert, "--key-file", key}, "TLS is configured, the scheme must be https"},
		{[]string{"--cert-file", cert}, "both --cert-file and --key-file"},
		{[]string{"--peer-key-file", key}, "both --peer-cert-file and --peer-key-file"},
		{[]string{"--cert-file", cert, "--key-file", key, "--client-cert-auth"}, "--client-cert-auth needs --trusted-ca-file"},
		{[]string{"--cert-file", filepath.Join(dir, "missing"), "--key-file", key}, "TLS file"},
		{[]string{"--listen-metrics-urls", "https://127.0.0.1:0"}, "https needs TLS files"},
		{[]string{"--initial-cluster-state", "old"}, "want new or existing"},
		{[]string{"--initial-cluster-state", "existing"}, "needs --join-endpoints"},
		{[]string{"--initial-cluster-state", "new", "--join-endpoints", "http://127.0.0.1:2379"}, "cannot go with --initial-cluster-state new"},
		{[]string{"--join-endpoints", "http://127.0.0.1:2379", "--initial-cluster", cluster, "--name", "a"}, "leave out --initial-cluster"},
		{[]string{"--join-endpoints", "127.0.0.1:2379"}, "--join-endpoints"},
		{[]string{"--initial-cluster-token", "t"}, "--initial-cluster-token needs --initial-cluster"},
		{[]string{"--initial-cluster", "a"}, "want name=http://host:port"},
		{[]string{"--name", "a", "--initial-cluster", "a=http://127.0.0.1:1,a=http://127.0.0.1:2"}, "listed twice"},
		{[]string{"--name", "z", "--initial-cluster", cluster}, `--name "z" is not in --initial-cluster`},
		{[]string{"--name", "a", "--initial-cluster", tlsCluster}, "https needs TLS files (--peer-cert-file"},
		{[]string{"--auto-compaction-mode", "hourly"}, "want periodic or revision"},
		{[]string{"--auto-compaction-retention", "soon"}, "want a duration"},
		{[]string{"--auto-compaction-mode", "revision", "--auto-compaction-retention", "-5"}, "number of revisions"},
		{[]string{"--quota-backend-bytes", "-1"}, "negative"},
		{[]string{"--auto-defrag=false", "--defrag-min-free-bytes", "1"}, "no policy to tune"},
		{[]string{"--defrag-check-interval", "-1s"}, "negative"},
		{[]string{"--defrag-max-in-use-ratio", "1.5"}, "between 0 and 1"},
		{[]string{"--defrag-quota-ratio", "-0.1"}, "between 0 and 1"},
		{[]string{"--nospace-recovery=false", "--nospace-keep-history"}, "no recovery to keep it"},
		{[]string{"--snapshot-keep", "3"}, "--snapshot-keep needs --snapshot-dir"},
		{[]string{"--snapshot-interval", "1m"}, "needs --snapshot-dir"},
		{[]string{"--snapshot-dir", pw}, "not a directory"},
		{[]string{"--snapshot-dir", dir, "--snapshot-keep", "-1"}, "negative"},
		{[]string{"--snapshot-dir", dir, "--snapshot-interval", "-1m"}, "negative"},
		{[]string{"--root-password", "x", "--root-password-file", pw}, "give one"},
		{[]string{"--root-password-file", empty}, "empty"},
		{[]string{"--root-password-file", filepath.Join(dir, "missing")}, "--root-password-file"},
	}
	for _, c := range refused {
		var stderr bytes.Buffer
		_, err := parseFlags(c.args, &stderr)
		require.ErrorIs(t, err, errUsage, "%v", c.args)
		require.Contains(t, err.Error(), c.want, "%v", c.args)
		require.Equal(t, 2, exitCode(err, &stderr), "%v", c.args)
	}

	accepted := []struct {
		args  []string
		check func(t *testing.T, f *flags)
	}{
		{nil, func(t *testing.T, f *flags) {
			require.Equal(t, embedded.DefaultName, f.name)
			require.Equal(t, "new", f.state)
			require.False(t, f.defragPolicy.Disabled, "the policy is on by default")
			require.True(t, f.nospaceRecovery)
		}},
		// What the client packages' test harness passes.
		{[]string{"--name", "m0", "--data-dir", dir, "--listen-client-urls", "http://127.0.0.1:23790",
			"--listen-peer-urls", "http://127.0.0.1:23800", "--initial-cluster", "m0=http://127.0.0.1:23800",
			"--initial-cluster-token", "etcdtest", "--log-level", "warn", "--auto-compaction-retention=0"},
			func(t *testing.T, f *flags) {
				require.Equal(t, []embedded.Member{{Name: "m0", PeerURL: "http://127.0.0.1:23800"}}, f.members)
				require.Equal(t, "etcdtest", f.token)
			}},
		{[]string{"--name", "d", "--join-endpoints", "http://127.0.0.1:2379,http://127.0.0.1:2381"}, func(t *testing.T, f *flags) {
			require.Equal(t, "existing", f.state)
			require.Equal(t, []string{"http://127.0.0.1:2379", "http://127.0.0.1:2381"}, f.joinURLs)
		}},
		{[]string{"--name", "b", "--initial-cluster-state", "existing", "--initial-cluster", cluster}, func(t *testing.T, f *flags) {
			require.True(t, f.existingWithMembers, "started after etcdctl member add")
		}},
		{[]string{"--name", "a", "--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth",
			"--listen-client-urls", "https://10.0.0.1:2379", "--listen-metrics-urls", "https://127.0.0.1:0",
			"--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca, "--peer-client-cert-auth",
			"--initial-cluster", tlsCluster}, func(t *testing.T, f *flags) {
			require.Equal(t, &embedded.TLSFiles{CertFile: cert, KeyFile: key, TrustedCAFile: ca, ClientCertAuth: true}, f.clientTLS)
			require.Equal(t, f.clientTLS, f.peerTLS)
		}},
		{[]string{"--root-password-file", pw}, func(t *testing.T, f *flags) { require.Equal(t, "secret", f.password) }},
		{[]string{"--auto-defrag=false", "--nospace-recovery=false"}, func(t *testing.T, f *flags) {
			require.True(t, f.defragPolicy.Disabled)
		}},
		{[]string{"--defrag-check-interval", "1s", "--defrag-min-free-bytes", "1048576", "--defrag-max-in-use-ratio", "0.3",
			"--defrag-quota-ratio", "0.9", "--nospace-keep-history"}, func(t *testing.T, f *flags) {
			require.Equal(t, embedded.DefragPolicy{CheckInterval: 1e9, MinFreeBytes: 1 << 20, MaxInUseRatio: 0.3, QuotaRatio: 0.9}, f.defragPolicy)
		}},
		{[]string{"--snapshot-dir", dir, "--snapshot-interval", "15m", "--snapshot-keep", "4"}, func(t *testing.T, f *flags) {
			require.Equal(t, &embedded.SnapshotSchedule{Dir: dir, Interval: 15 * 6e10, Keep: 4}, f.snapshots)
		}},
		{[]string{"--auto-compaction-retention", "2"}, nil}, // etcd's bare hours
	}
	for _, c := range accepted {
		f, err := parseFlags(c.args, &bytes.Buffer{})
		require.NoError(t, err, "%v", c.args)
		require.NotEmpty(t, f.options(&bytes.Buffer{}))
		if c.check != nil {
			c.check(t, f)
		}
	}

	_, err := parseFlags([]string{"-h"}, &bytes.Buffer{})
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Zero(t, exitCode(err, &bytes.Buffer{}))
}

// TestRunRefuses covers what only starting finds out, before anything
// listens.
func TestRunRefuses(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--listen-client-urls", "http://0.0.0.0:0"}, &out, &out)
	require.ErrorIs(t, err, embedded.ErrInsecureListen)
	var stderr bytes.Buffer
	require.Equal(t, 2, exitCode(err, &stderr))
	require.Contains(t, stderr.String(), "--insecure-non-loopback")

	err = run(context.Background(), []string{"--heartbeat-interval", "500", "--election-timeout", "1000"}, &out, &out)
	require.ErrorIs(t, err, embedded.ErrInvalidConfig)
	require.Equal(t, 2, exitCode(err, &bytes.Buffer{}))

	require.Equal(t, 1, exitCode(errors.New("stopped"), &bytes.Buffer{}))
}

func TestLeaveFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "needs --endpoints"},
		{[]string{"--endpoints", "http://127.0.0.1:2379"}, "one of --name and --member-id"},
		{[]string{"--endpoints", "http://127.0.0.1:2379", "--name", "d", "--member-id", "1"}, "one of --name and --member-id"},
		{[]string{"--endpoints", "http://127.0.0.1:2379", "--member-id", "xyz"}, "want a hex ID"},
		{[]string{"--endpoints", "http://127.0.0.1:2379", "--name", "d", "--cert", "c"}, "--cert and --key go together"},
		{[]string{"--endpoints", "http://127.0.0.1:2379", "--name", "d", "--user", "root:x", "--password", "y"}, "give one"},
		{[]string{"--endpoints", "http://127.0.0.1:2379", "--name", "d", "--timeout", "0s"}, "positive"},
		{[]string{"--endpoints", "http://127.0.0.1:2379", "--name", "d", "extra"}, "unexpected argument"},
	} {
		_, err := parseLeave(c.args, &bytes.Buffer{})
		require.ErrorIs(t, err, errUsage, "%v", c.args)
		require.Contains(t, err.Error(), c.want, "%v", c.args)
	}
	f, err := parseLeave([]string{"--endpoints", "http://a:1,http://b:2", "--name", "d", "--user", "root:pw"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, []string{"http://a:1", "http://b:2"}, f.endpoints)
	require.Equal(t, "root", f.user)
	require.Equal(t, "pw", f.password)
}
