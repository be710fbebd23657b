#!/bin/sh
# Checks what a consumer of the client packages downloads: a scratch module
# that imports registry, discovery, election and lock must not see etcd's
# server, its storage, its tools, a CLI framework, a browser driver or an
# OpenTelemetry exporter in its module graph. Also checks that every module
# of this repository is tidy.
set -eu

cd "$(dirname "$0")/.."
repo=$(pwd)

forbidden='^(go.etcd.io/etcd/server/v3|go.etcd.io/bbolt|go.etcd.io/raft/v3|go.etcd.io/etcd/etcdutl/v3|go.etcd.io/etcd/etcdctl/v3|github.com/spf13/cobra|github.com/chromedp/chromedp|go.opentelemetry.io/otel/exporters/.*)$'

for m in . embedded faults examples; do
	if ! (cd "$m" && GOWORK=off go mod tidy -diff >/dev/null); then
		echo "check-modules: $m/go.mod is not tidy; run go mod tidy there:" >&2
		(cd "$m" && GOWORK=off go mod tidy -diff) >&2 || true
		exit 1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cat >"$tmp/go.mod" <<MOD
module example.com/consumer

go 1.26.0

require github.com/rosterkit/roster v0.0.0-00010101000000-000000000000

replace github.com/rosterkit/roster => $repo
MOD
cat >"$tmp/main.go" <<'SRC'
package main

import (
	_ "github.com/rosterkit/roster/discovery"
	_ "github.com/rosterkit/roster/election"
	_ "github.com/rosterkit/roster/lock"
	_ "github.com/rosterkit/roster/registry"
)

func main() {}
SRC
(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 && GOWORK=off go build ./...)
mods=$(cd "$tmp" && GOWORK=off go list -m all | awk 'NR > 1 {print $1}')
bad=$(printf '%s\n' "$mods" | grep -E "$forbidden" || true)
if [ -n "$bad" ]; then
	echo "check-modules: a consumer of the client packages downloads:" >&2
	printf '  %s\n' $bad >&2
	exit 1
fi
echo "check-modules: a consumer of registry, discovery, election and lock has $(printf '%s\n' "$mods" | wc -l) modules in its graph, none of etcd's server, tools or exporters"
