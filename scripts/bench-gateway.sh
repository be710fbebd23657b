#!/usr/bin/env bash
# Measures, in one run on this machine, HTTP throughput and latency of:
#   direct   one demo worker hit directly
#   gateway  the demo gateway (roster discovery + picker + retries) in front of the workers
#   nginx    nginx with a static upstream of the same workers (keepalive on)
#   bare     a bare, tuned net/http/httputil.ReverseProxy in front of them (examples/bench/bareproxy)
# The load is wrk on loopback. It installs nginx and wrk from Debian when they
# are missing. Rounds alternate the targets so that drift hits all alike.
#
# CPUs: with two cores or more, every proxy gets the same budget: the proxies
# run on the last core alone (taskset), wrk, the workers and etcd on the
# others. So nginx's single worker process and the Go proxies (which then see
# one CPU: GOMAXPROCS=1) each have exactly one core, and no proxy takes CPU
# from the workers it waits on. PIN=0 leaves every process free on every core.
# Besides req/s, each row has what the proxy itself used, from /proc: its CPU
# per request and its share of one core, and how busy the other cores were
# (so a row where the proxy's core was not full shows it was not the limit).
#
# Usage: scripts/bench-gateway.sh [seconds per round (default 10)] [rounds (default 3)] [connections (default 32)]
# GOGC_PROXIES=400 runs the Go proxies (gateway, bare) with that GOGC, the
# workers keeping the default.
# BASE_GATEWAY=path/to/gateway adds that build of the gateway as the row
# gateway0, to compare two builds in one run.
# PROFILE=cpu.pprof also takes CPU profiles of the gateway (cpu.pprof) and
# of the bare proxy (cpu-bare.pprof) under the same load, after the rounds
# (go tool pprof -top cpu.pprof reads them), and splits each per request
# into net/http + kernel + runtime (the floor) and the gateway's own work
# (examples/bench/profsplit).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
rounds=${2:-3}
conns=${3:-32}
workers=2
ncpu=$(nproc)
pin=${PIN:-1}

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing ${need[*]} from Debian"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# onproxy / onload prefix a command to run it on the proxies' core / the
# load's cores (taskset execs it, so $! is the command's own pid).
if [ "$pin" = 1 ] && [ "$ncpu" -ge 2 ]; then
	proxy_cpus=$((ncpu - 1))
	load_cpus=0-$((ncpu - 2))
	onproxy=(taskset -c "$proxy_cpus" env)
	onload=(taskset -c "$load_cpus")
	layout="proxies pinned alone to cpu $proxy_cpus, wrk + workers + etcd to cpu $load_cpus"
else
	pin=0
	load_cpus=0-$((ncpu - 1))
	onproxy=(env)
	onload=(env)
	layout="no pinning: every process on all $ncpu cores"
fi

gogc=() # the Go proxies' environment
if [ -n "${GOGC_PROXIES:-}" ]; then gogc=("GOGC=$GOGC_PROXIES"); layout="$layout; GOGC=$GOGC_PROXIES for the Go proxies"; fi

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
(cd examples && go build -o "$tmp/gateway" ./gateway && go build -o "$tmp/worker" ./worker && go build -o "$tmp/bareproxy" ./bench/bareproxy &&
	go build -o "$tmp/profsplit" ./bench/profsplit)

etcd_port=$(freeport)
"${onload[@]}" "$tmp/roster-etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$(freeport)" \
	--log-level error >"$tmp/etcd.log" 2>&1 &
pids+=($!)
waitfor "http://127.0.0.1:$etcd_port/health"

upstreams=()
for i in $(seq 1 $workers); do
	p=$(freeport)
	"${onload[@]}" "$tmp/worker" -etcd "127.0.0.1:$etcd_port" -id "bench-$i" -listen "127.0.0.1:$p" >"$tmp/worker-$i.log" 2>&1 &
	pids+=($!)
	upstreams+=("127.0.0.1:$p")
	waitfor "http://127.0.0.1:$p/"
done

declare -A proc # target -> pids whose CPU is the proxy's
gw_port=$(freeport)
pprof_port=$(freeport)
"${onproxy[@]}" "${gogc[@]}" "$tmp/gateway" -etcd "127.0.0.1:$etcd_port" -listen "127.0.0.1:$gw_port" -pprof "127.0.0.1:$pprof_port" >"$tmp/gateway.log" 2>&1 &
pids+=($!)
proc[gateway]=$!
waitfor "http://127.0.0.1:$gw_port/svc/worker/hello"
targets=(direct gateway nginx bare)
if [ -n "${BASE_GATEWAY:-}" ]; then # another gateway binary, to compare builds in one run
	gw0_port=$(freeport)
	"${onproxy[@]}" "${gogc[@]}" "$BASE_GATEWAY" -etcd "127.0.0.1:$etcd_port" -listen "127.0.0.1:$gw0_port" >"$tmp/gateway0.log" 2>&1 &
	pids+=($!)
	proc[gateway0]=$!
	waitfor "http://127.0.0.1:$gw0_port/svc/worker/hello"
	targets=(direct gateway0 gateway nginx bare)
fi

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
"${onproxy[@]}" "$nginx_bin" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" &
pids+=($!)
ng_master=$!
waitfor "http://127.0.0.1:$ng_port/svc/worker/hello"
proc[nginx]="$ng_master $(pgrep -P "$ng_master" | tr '\n' ' ')"

bare_port=$(freeport)
bare_pprof=$(freeport)
"${onproxy[@]}" "${gogc[@]}" "$tmp/bareproxy" -listen "127.0.0.1:$bare_port" -pprof "127.0.0.1:$bare_pprof" -upstreams "$(IFS=,; echo "${upstreams[*]}")" >"$tmp/bare.log" 2>&1 &
pids+=($!)
proc[bare]=$!
waitfor "http://127.0.0.1:$bare_port/svc/worker/hello"
proc[direct]=""

declare -A url=(
	[direct]="http://${upstreams[0]}/hello"
	[gateway]="http://127.0.0.1:$gw_port/svc/worker/hello"
	[nginx]="http://127.0.0.1:$ng_port/svc/worker/hello"
	[bare]="http://127.0.0.1:$bare_port/svc/worker/hello"
)
if [ -n "${BASE_GATEWAY:-}" ]; then url[gateway0]="http://127.0.0.1:$gw0_port/svc/worker/hello"; fi
for t in "${targets[@]}"; do "${onload[@]}" wrk -t1 -c"$conns" -d2s "${url[$t]}" >/dev/null; done # warm up

hz=$(getconf CLK_TCK)
ticks() { # [-s] pids... -> their user + system (-s: system only) CPU time, in clock ticks
	local t=0 p s sys=0
	if [ "${1:-}" = -s ]; then sys=1; shift; fi
	for p in "$@"; do
		s=$(cat "/proc/$p/stat") && s=${s##*) } # fields after the command name
		set -- $s
		if [ "$sys" = 1 ]; then t=$((t + ${13})); else t=$((t + ${12} + ${13})); fi
	done
	echo "$t"
}
busy() { # cpus (such as 0-2) -> their busy and total jiffies, from /proc/stat
	awk -v r="$1" 'BEGIN { split(r, a, "-"); lo = a[1]; hi = (a[2] == "" ? a[1] : a[2]) }
		$1 ~ /^cpu[0-9]+$/ { n = substr($1, 4) + 0; if (n < lo || n > hi) next
			tot = 0; for (i = 2; i <= 9; i++) tot += $i; b += tot - $5 - $6; all += tot }
		END { print b, all }' /proc/stat
}

declare -A rps p50 p99 us sus pcpu lcpu foreign
ms() { # wrk latency such as 512.00us, 1.23ms, 1.01s -> milliseconds
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /s$/ && v !~ /ms$/) n *= 1000; printf "%.3f", n }'
}
for r in $(seq 1 "$rounds"); do
	for t in "${targets[@]}"; do
		c0=$(ticks ${proc[$t]}) s0=$(ticks -s ${proc[$t]})
		read -r b0 a0 < <(busy "$load_cpus")
		if [ "$pin" = 1 ]; then read -r f0 _ < <(busy "$proxy_cpus"); fi
		out=$("${onload[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency "${url[$t]}")
		c1=$(ticks ${proc[$t]}) s1=$(ticks -s ${proc[$t]})
		read -r b1 a1 < <(busy "$load_cpus")
		if [ "$pin" = 1 ]; then
			# what else ran on the proxies' core: other processes of the machine
			read -r f1 _ < <(busy "$proxy_cpus")
			foreign[$t]+="$(awk -v f=$((f1 - f0 - (c1 - c0))) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f%%", (f < 0 ? 0 : f) / hz / s * 100}') "
		fi
		if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then
			echo "bench-gateway: $t had errors in round $r:" >&2
			echo "$out" >&2
			exit 1
		fi
		n=$(echo "$out" | awk '/requests in/ {print $1}')
		rps[$t]+="$(echo "$out" | awk '/^Requests\/sec/ {print $2}') "
		p50[$t]+="$(ms "$(echo "$out" | awk '$1 == "50%" {print $2}')") "
		p99[$t]+="$(ms "$(echo "$out" | awk '$1 == "99%" {print $2}')") "
		us[$t]+="$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", c / hz * 1e6 / n}') "
		sus[$t]+="$(awk -v c=$((s1 - s0)) -v hz="$hz" -v n="$n" 'BEGIN {printf "%.1f", c / hz * 1e6 / n}') "
		pcpu[$t]+="$(awk -v c=$((c1 - c0)) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f", c / hz / s * 100}') "
		lcpu[$t]+="$(awk -v b=$((b1 - b0)) -v a=$((a1 - a0)) 'BEGIN {printf "%.0f", a ? b / a * 100 : 0}') "
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo
echo "wrk -t1 -c$conns, ${secs}s per round, $rounds rounds alternating, $workers workers, $ncpu cores, $layout; medians"
echo "proxy_us: the proxy's CPU per request (µs), sys_us the kernel's part of it; proxy_cpu: its share of one core; load_cpu: how busy cpu $load_cpus were"
printf '%-8s %9s %8s %8s %9s %8s %10s %9s %7s %10s %9s\n' target req/s p50_ms p99_ms vs_nginx vs_bare vs_direct proxy_us sys_us proxy_cpu% load_cpu%
ng=$(echo "${rps[nginx]}" | median)
bare=$(echo "${rps[bare]}" | median)
direct=$(echo "${rps[direct]}" | median)
for t in "${targets[@]}"; do
	m=$(echo "${rps[$t]}" | median)
	u="-" su="-" pc="-"
	if [ -n "${proc[$t]}" ]; then
		u=$(echo "${us[$t]}" | median) su=$(echo "${sus[$t]}" | median) pc=$(echo "${pcpu[$t]}" | median)
	fi
	printf '%-8s %9.0f %8s %8s %9.2f %8.2f %10.2f %9s %7s %10s %9s\n' "$t" "$m" "$(echo "${p50[$t]}" | median)" "$(echo "${p99[$t]}" | median)" \
		"$(awk -v a="$m" -v b="$ng" 'BEGIN {print a / b}')" "$(awk -v a="$m" -v b="$bare" 'BEGIN {print a / b}')" \
		"$(awk -v a="$m" -v b="$direct" 'BEGIN {print a / b}')" "$u" "$su" "$pc" "$(echo "${lcpu[$t]}" | median)"
done

echo "each round: req/s | proxy_us | CPU that other processes took on the proxies' core (a disturbed round)"
for t in "${targets[@]}"; do printf '  %-8s %s| %s| %s\n' "$t" "${rps[$t]}" "${us[$t]:-}" "${foreign[$t]:-}"; done

if [ -n "${PROFILE:-}" ]; then
	# The bare proxy's profile goes beside the gateway's (cpu.pprof ->
	# cpu-bare.pprof), to tell the gateway's own work from the floor.
	bare_profile="${PROFILE%.*}-bare.${PROFILE##*.}"
	for t in gateway bare; do
		out=$PROFILE port=$pprof_port
		if [ "$t" = bare ]; then out=$bare_profile port=$bare_pprof; fi
		echo
		echo "CPU profile of $t under the same load (${secs}s) into $out"
		"${onload[@]}" wrk -t1 -c"$conns" -d"$((secs + 2))s" "${url[$t]}" >"$tmp/wrk-profile.txt" &
		wrkpid=$!
		sleep 1
		c0=$(ticks ${proc[$t]})
		curl -fsS -o "$out" "http://127.0.0.1:$port/debug/pprof/profile?seconds=$secs"
		c1=$(ticks ${proc[$t]})
		wait "$wrkpid"
		# per request: the profile's samples divided by this rate (wrk's, over secs + 2)
		rate=$(awk '/^Requests\/sec/ {print $2}' "$tmp/wrk-profile.txt")
		echo "$t under the profile: $rate req/s, $(awk -v c=$((c1 - c0)) -v hz="$hz" -v r="$rate" -v s="$secs" 'BEGIN {printf "%.1f", c / hz * 1e6 / (r * s)}') µs of CPU per request"
		go tool pprof -traces "$out" 2>/dev/null | "$tmp/profsplit" -rate "$rate" -seconds "$secs"
	done
fi
