#!/bin/sh
# Runs the fault suite against a standalone three-member etcd cluster: etcd's
# own server, built from the etcd module at the version go.mod requires. The
# suite starts the processes on free loopback ports with temporary data dirs,
# breaks them with SIGKILL and SIGTERM, restarts them, and stops them at the
# end (faults/external_test.go).
#
# Usage: scripts/external-cluster.sh [go test flags...]
#   e.g. scripts/external-cluster.sh -race
#        ROSTER_SOAK=1 scripts/external-cluster.sh -timeout 60m
set -eu

cd "$(dirname "$0")/.."

# The SDK must need nothing from the embedded server: nothing its packages
# import may pull it in.
sdk="./registry ./discovery ./election ./lock ./session ."
if go list -deps $sdk | grep -q '^go.etcd.io/etcd/server/'; then
	echo "external-cluster: the SDK depends on etcd's server:" >&2
	go list -deps $sdk | grep '^go.etcd.io/etcd/server/' >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
go build -o "$tmp/etcd" go.etcd.io/etcd/server/v3
"$tmp/etcd" --version

ROSTER_EXTERNAL=1 ROSTER_ETCD_BIN="$tmp/etcd" \
	go test -count=1 -run '^TestFaultsExternal$' -v "$@" ./faults
