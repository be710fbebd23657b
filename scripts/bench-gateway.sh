#!/usr/bin/env bash
# Measures, in one run on this machine, HTTP throughput and latency of:
#   direct   one demo worker hit directly
#   gateway  the demo gateway (roster discovery + picker + retries) in front of the workers
#   nginx    nginx with a static upstream of the same workers (keepalive on)
#   bare     a bare, tuned net/http/httputil.ReverseProxy in front of them (examples/bench/bareproxy)
# The load is wrk on loopback. It installs nginx and wrk from Debian when they
# are missing. Rounds alternate the targets so that drift hits all alike.
#
# Usage: scripts/bench-gateway.sh [seconds per round (default 10)] [rounds (default 3)] [connections (default 32)]
# PROFILE=cpu.pprof also takes a CPU profile of the gateway under the same
# load, after the rounds (go tool pprof -top cpu.pprof reads it).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
rounds=${2:-3}
conns=${3:-32}
workers=2

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]} from Debian"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

used=" "
freeport() {
	local p
	while :; do
		p=$((21000 + RANDOM % 8000))
		case "$used" in *" $p "*) continue ;; esac
		if ! (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			used="$used$p "
			echo "$p"
			return
		fi
	done
}

waitfor() { # url
	for _ in $(seq 1 300); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench-gateway: $1 never answered" >&2
	return 1
}

echo "building"
(cd embedded && go build -o "$tmp/roster-etcd" ./cmd/roster-etcd)
(cd examples && go build -o "$tmp/gateway" ./gateway && go build -o "$tmp/worker" ./worker && go build -o "$tmp/bareproxy" ./bench/bareproxy)

etcd_port=$(freeport)
"$tmp/roster-etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$(freeport)" \
	--log-level error >"$tmp/etcd.log" 2>&1 &
pids+=($!)
waitfor "http://127.0.0.1:$etcd_port/health"

upstreams=()
for i in $(seq 1 $workers); do
	p=$(freeport)
	"$tmp/worker" -etcd "127.0.0.1:$etcd_port" -id "bench-$i" -listen "127.0.0.1:$p" >"$tmp/worker-$i.log" 2>&1 &
	pids+=($!)
	upstreams+=("127.0.0.1:$p")
	waitfor "http://127.0.0.1:$p/"
done

gw_port=$(freeport)
pprof_port=$(freeport)
"$tmp/gateway" -etcd "127.0.0.1:$etcd_port" -listen "127.0.0.1:$gw_port" -pprof "127.0.0.1:$pprof_port" >"$tmp/gateway.log" 2>&1 &
pids+=($!)
waitfor "http://127.0.0.1:$gw_port/svc/worker/hello"

ng_port=$(freeport)
{
	echo "worker_processes 1; daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx-error.log warn;"
	echo "events { worker_connections 4096; }"
	echo "http { access_log off;"
	echo "  upstream workers { keepalive 64;"
	for u in "${upstreams[@]}"; do echo "    server $u;"; done
	echo "  }"
	echo "  server { listen 127.0.0.1:$ng_port;"
	echo "    location /svc/worker/ { proxy_pass http://workers/; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
	echo "  }"
	echo "}"
} >"$tmp/nginx.conf"
"$nginx_bin" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" &
pids+=($!)
waitfor "http://127.0.0.1:$ng_port/svc/worker/hello"

bare_port=$(freeport)
"$tmp/bareproxy" -listen "127.0.0.1:$bare_port" -upstreams "$(IFS=,; echo "${upstreams[*]}")" >"$tmp/bare.log" 2>&1 &
pids+=($!)
waitfor "http://127.0.0.1:$bare_port/svc/worker/hello"

declare -A url=(
	[direct]="http://${upstreams[0]}/hello"
	[gateway]="http://127.0.0.1:$gw_port/svc/worker/hello"
	[nginx]="http://127.0.0.1:$ng_port/svc/worker/hello"
	[bare]="http://127.0.0.1:$bare_port/svc/worker/hello"
)
targets=(direct gateway nginx bare)
for t in "${targets[@]}"; do wrk -t1 -c"$conns" -d2s "${url[$t]}" >/dev/null; done # warm up

declare -A rps p50 p99
ms() { # wrk latency such as 512.00us, 1.23ms, 1.01s -> milliseconds
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}
for r in $(seq 1 "$rounds"); do
	for t in "${targets[@]}"; do
		out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "${url[$t]}")
		if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then
			echo "bench-gateway: $t had errors in round $r:" >&2
			echo "$out" >&2
			exit 1
		fi
		rps[$t]+="$(echo "$out" | awk '/^Requests\/sec/ {print $2}') "
		p50[$t]+="$(ms "$(echo "$out" | awk '$1 == "50%" {print $2}')") "
		p99[$t]+="$(ms "$(echo "$out" | awk '$1 == "99%" {print $2}')") "
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo
echo "wrk -t1 -c$conns, ${secs}s per round, $rounds rounds alternating, $workers workers, $(nproc) cores shared by load and servers; medians"
printf '%-8s %12s %10s %10s %10s %10s\n' target req/s p50_ms p99_ms vs_nginx vs_bare
ng=$(echo "${rps[nginx]}" | median)
bare=$(echo "${rps[bare]}" | median)
for t in "${targets[@]}"; do
	m=$(echo "${rps[$t]}" | median)
	printf '%-8s %12.0f %10s %10s %10.2f %10.2f\n' "$t" "$m" "$(echo "${p50[$t]}" | median)" "$(echo "${p99[$t]}" | median)" \
		"$(awk -v a="$m" -v b="$ng" 'BEGIN {print a / b}')" "$(awk -v a="$m" -v b="$bare" 'BEGIN {print a / b}')"
done

if [ -n "${PROFILE:-}" ]; then
	echo
	echo "CPU profile of the gateway under the same load (${secs}s) into $PROFILE"
	wrk -t1 -c"$conns" -d"$((secs + 2))s" "${url[gateway]}" >/dev/null &
	wrkpid=$!
	sleep 1
	curl -fsS -o "$PROFILE" "http://127.0.0.1:$pprof_port/debug/pprof/profile?seconds=$secs"
	wait "$wrkpid"
fi
