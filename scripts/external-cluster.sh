#!/bin/sh
# Runs the fault suite against a three-member cluster of etcd's own server
# processes, built from the etcd module at the version the embedded module
# requires, instead of roster-etcd. The suite starts the processes on free
# loopback ports with temporary data dirs, breaks them with SIGKILL and
# SIGTERM, restarts them, and stops them at the end (faults/external_test.go).
#
# Usage: scripts/external-cluster.sh [go test flags...]
#   e.g. scripts/external-cluster.sh -race
#        ROSTER_SOAK=1 scripts/external-cluster.sh -timeout 60m
set -eu

cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
(cd embedded && go build -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
"$tmp/etcd" --version

ROSTER_EXTERNAL=1 ROSTER_ETCD_BIN="$tmp/etcd" \
	go test -count=1 -run '^TestFaultsExternal$' -v "$@" ./faults
