#!/usr/bin/env bash
# bench/frontdoor.sh — CPU cost per request of geostamp's front door against
# HAProxy 2.6 and nginx, proxying the same small backend on loopback.
#
# Each proxy runs pinned to one core (PROXY_CPU), wrk and the backend on
# another (CLIENT_CPU). For each proxy and for keep-alive and new-connection
# clients it prints requests/s, p50/p99 latency and the proxy's CPU time per
# request (utime+stime of its processes from /proc/PID/stat, before/after,
# divided by the requests served), then the ratio geostamp/HAProxy.
#
# Tracing: the front door also runs with OpenTelemetry tracing at 1 % and
# at 100 % sampling (OTEL_TRACES_SAMPLER=parentbased_traceidratio,
# OTEL_TRACES_SAMPLER_ARG=0.01 / 1), exporting over OTLP/HTTP to the
# backend nginx (which answers the exports with 200), keep-alive clients;
# each is compared with the front door without tracing (no OTEL_*
# variable: no span work) run just before it, in TRACE_ROUNDS rounds.
#
# Run as root from anywhere (installs haproxy, nginx and wrk from Debian if
# missing):   bash bench/frontdoor.sh
# Settings:   DURATION=10 CONNS=50 PROXY_CPU=0 CLIENT_CPU=1 BASE_PORT=18180
#             TRACE_ROUNDS=3
# Takes about 4 minutes. Loopback only. Run it on an otherwise idle machine:
# other load on the cores skews every figure.
set -euo pipefail

DURATION=${DURATION:-10}
TRACE_ROUNDS=${TRACE_ROUNDS:-3}
CONNS=${CONNS:-50}
PROXY_CPU=${PROXY_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BASE_PORT=${BASE_PORT:-18180}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "bench: $*" >&2; }

# --- tools --------------------------------------------------------------
missing=()
for tool in haproxy nginx wrk; do
	command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
	log "installing ${missing[*]} from Debian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
for tool in haproxy nginx wrk taskset go; do
	command -v "$tool" >/dev/null 2>&1 || { log "$tool is required"; exit 1; }
done
if (($(nproc) < 2)); then
	log "needs at least 2 CPUs (proxy on one, client and backend on another)"
	exit 1
fi

WORK=$(mktemp -d /tmp/geostamp-bench.XXXXXX)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

log "building geostamp"
(cd "$ROOT" && go build -o "$WORK/geostamp" ./cmd/geostamp)
if ! "$WORK/geostamp" frontdoor -h >/dev/null 2>&1; then
	log "this geostamp build has no 'frontdoor' command"
	exit 1
fi

BACKEND=$BASE_PORT
P_GEOSTAMP=$((BASE_PORT + 1))
P_HAPROXY=$((BASE_PORT + 2))
P_NGINX=$((BASE_PORT + 3))
for p in $BACKEND $P_GEOSTAMP $P_HAPROXY $P_NGINX; do
	if ss -Hltn "sport = :$p" | grep -q .; then
		log "port $p is in use; set BASE_PORT"
		exit 1
	fi
done

# --- backend: nginx answering a small static body --------------------------
cat >"$WORK/backend.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/backend.pid;
error_log $WORK/backend.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$BACKEND backlog=4096;
    location / { default_type text/plain; return 200 "hello from the backend\n"; }
    # the OTLP/HTTP sink of the tracing runs: an empty 200 is a valid answer
    location = /v1/traces { return 200; }
  }
}
EOF
taskset -c "$CLIENT_CPU" nginx -c "$WORK/backend.conf" -e "$WORK/backend.err" &
PIDS+=($!)

# --- proxies ----------------------------------------------------------------
cat >"$WORK/topology.yaml" <<EOF
name: bench
regions:
  - {name: backend, origin: "http://127.0.0.1:$BACKEND"}
frontdoor:
  listen: 127.0.0.1:$P_GEOSTAMP
  waf: {mode: off}
EOF

cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$P_HAPROXY
  default_backend be
backend be
  http-reuse always
  server backend 127.0.0.1:$BACKEND
EOF

cat >"$WORK/nginx-proxy.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx-proxy.pid;
error_log $WORK/nginx-proxy.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  upstream backend { server 127.0.0.1:$BACKEND; keepalive 256; }
  server {
    listen 127.0.0.1:$P_NGINX backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF

wait_port() {
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	log "nothing answers on port $1"
	exit 1
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
	local total=0 pid t
	for pid in "$@"; do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		total=$((total + t))
	done
	echo "$total"
}

TICK=$(getconf CLK_TCK)
RESULTS=()

# run NAME MODE PORT PID...: one measured wrk run.
run() {
	local name=$1 mode=$2 port=$3
	shift 3
	local hdr=()
	[[ $mode == close ]] && hdr=(-H "Connection: close")
	taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s "${hdr[@]}" "http://127.0.0.1:$port/" >/dev/null 2>&1
	local before after out
	before=$(cpu_ticks "$@")
	out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:$port/")
	after=$(cpu_ticks "$@")
	local reqs rps p50 p99 errs us
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	errs=$(awk '/Socket errors|Non-2xx/ {printf "%s ", $0}' <<<"$out")
	us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$reqs" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
	RESULTS+=("$name|$mode|$rps|$p50|$p99|$us")
	printf '%-9s %-10s %9s req/s  p50 %-8s p99 %-8s  %6s µs CPU/request %s\n' "$name" "$mode" "$rps" "$p50" "$p99" "$us" "${errs:+ ($errs)}"
}

bench() {
	local name=$1 port=$2
	shift 2
	wait_port "$port"
	run "$name" keep-alive "$port" "$@"
	run "$name" close "$port" "$@"
}

wait_port "$BACKEND"
log "backend on :$BACKEND (cpu $CLIENT_CPU); proxies on cpu $PROXY_CPU; wrk -c$CONNS -d${DURATION}s on cpu $CLIENT_CPU"

# Tracing off: no OTEL_* variable (the front door does no span work).
for v in $(env | awk -F= '/^OTEL_/ {print $1}'); do unset "$v"; done
taskset -c "$PROXY_CPU" "$WORK/geostamp" frontdoor -f "$WORK/topology.yaml" --admin off --log-level warn &
gpid=$!
PIDS+=($gpid)
bench geostamp "$P_GEOSTAMP" "$gpid"
kill "$gpid"
wait "$gpid" 2>/dev/null || true

# Tracing, in TRACE_ROUNDS rounds of off, 1 % and 100 % (each a fresh
# process; tracing on exports to the backend's /v1/traces): the ratio to
# tracing off is taken within each round, so that load that comes and
# goes on the machine moves both sides of a ratio alike; the median is
# reported.
traced_run() { # NAME RATIO ("" for off)
	local name=$1 ratio=$2
	if [[ -n $ratio ]]; then
		OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=$ratio \
			OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$BACKEND OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
			taskset -c "$PROXY_CPU" "$WORK/geostamp" frontdoor -f "$WORK/topology.yaml" --admin off --log-level warn &
	else
		taskset -c "$PROXY_CPU" "$WORK/geostamp" frontdoor -f "$WORK/topology.yaml" --admin off --log-level warn &
	fi
	local pid=$!
	PIDS+=($pid)
	wait_port "$P_GEOSTAMP"
	run "$name" keep-alive "$P_GEOSTAMP" "$pid"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}
for round in $(seq "$TRACE_ROUNDS"); do
	traced_run "trace-off#$round" ""
	traced_run "trace-1%#$round" 0.01
	traced_run "trace-100%#$round" 1
done

taskset -c "$PROXY_CPU" haproxy -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
hpid=$!
PIDS+=($hpid)
bench haproxy "$P_HAPROXY" "$hpid"
kill "$hpid"

taskset -c "$PROXY_CPU" nginx -c "$WORK/nginx-proxy.conf" -e "$WORK/nginx-proxy.err" &
npid=$!
PIDS+=($npid)
sleep 0.3
# nginx serves from its worker; count the master too.
bench nginx "$P_NGINX" "$npid" $(pgrep -P "$npid")
kill "$npid"

# --- summary ----------------------------------------------------------------
us_of() { for r in "${RESULTS[@]}"; do IFS='|' read -r n m _ _ _ u <<<"$r"; [[ $n == "$1" && $m == "$2" ]] && echo "$u"; done; }
echo
echo "| proxy | clients | req/s | p50 | p99 | CPU µs/request |"
echo "|---|---|---:|---:|---:|---:|"
for r in "${RESULTS[@]}"; do
	IFS='|' read -r n m rps p50 p99 us <<<"$r"
	echo "| $n | $m | $rps | $p50 | $p99 | $us |"
done
echo
for m in keep-alive close; do
	awk -v g="$(us_of geostamp $m)" -v h="$(us_of haproxy $m)" -v m="$m" \
		'BEGIN {printf "geostamp/HAProxy CPU per request, %s: %.2f\n", m, g / h}'
done
for n in trace-1% trace-100%; do
	ratios=()
	for round in $(seq "$TRACE_ROUNDS"); do
		ratios+=("$(awk -v t="$(us_of "$n#$round" keep-alive)" -v g="$(us_of "trace-off#$round" keep-alive)" 'BEGIN {printf "%.2f", t / g}')")
	done
	median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
	echo "geostamp $n/tracing off CPU per request, keep-alive: $median (median of rounds: ${ratios[*]})"
done
echo "machine: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) CPUs; $(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3); $(go version | cut -d' ' -f3)"
