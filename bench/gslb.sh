#!/usr/bin/env bash
# bench/gslb.sh — queries per second of geostamp's GSLB DNS against knot and
# bind9 serving the same names from a static zone, measured with dnsperf in
# the same run. Each server is pinned to one core (taskset) and dnsperf to
# another, so the figures are per core.
#
# Usage: bench/gslb.sh            (as root: installs dnsperf, knot, bind9 if missing)
# Environment:
#   DURATION=15      seconds of each dnsperf run
#   ROUNDS=2         runs per server, alternating servers; the mean is reported
#   SERVER_CPU=0     core of the servers;  CLIENT_CPU=1  core of dnsperf
#   BASE_PORT=25350  ports BASE..BASE+3 on 127.0.0.1 (geostamp, knot, bind9, http)
#   GEOSTAMP=path    a built geostamp binary (default: go build ./cmd/geostamp)
#
# Targets (issue 4): geostamp >= 1.0x bind9 and >= 0.5x knot.
set -euo pipefail

DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-2}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BASE_PORT=${BASE_PORT:-25350}
GS_PORT=$BASE_PORT
KNOT_PORT=$((BASE_PORT + 1))
BIND_PORT=$((BASE_PORT + 2))
HTTP_PORT=$((BASE_PORT + 3))
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v knotd >/dev/null || need+=(knot)
command -v named >/dev/null || need+=(bind9)
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v taskset >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
	echo "installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if (($(nproc) < 2)); then
	echo "gslb.sh: needs 2 cores (one for the server, one for dnsperf)" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/gslb-bench.XXXXXX)
pids=()
declare -A pid_of
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -z ${GEOSTAMP:-} ]]; then
	echo "building geostamp"
	(cd "$ROOT" && go build -o "$TMP/geostamp" ./cmd/geostamp)
	GEOSTAMP=$TMP/geostamp
fi

# The same names in every server: what geostamp answers with every region
# healthy and priority routing.
cat >"$TMP/bench.test.zone" <<'EOF'
$ORIGIN bench.test.
$TTL 3600
@            IN SOA ns1.bench.test. hostmaster.bench.test. 1 3600 600 604800 10
@            IN NS  ns1.bench.test.
ns1          IN A   127.0.0.1
app       10 IN A   127.0.1.1
app       10 IN AAAA fd00::1
westeurope 10 IN A  127.0.1.1
northeurope 10 IN A 127.0.2.1
EOF

# Mostly the routed name, plus AAAA, a region name and NXDOMAIN.
for _ in 1 2 3 4 5 6 7; do echo "app.bench.test A"; done >"$TMP/queries"
printf '%s\n' "app.bench.test AAAA" "westeurope.bench.test A" "nope.bench.test A" >>"$TMP/queries"

# knot: one UDP worker, as root in the foreground, state in $TMP.
mkdir -p "$TMP/knot/db"
cat >"$TMP/knot.conf" <<EOF
server:
    rundir: "$TMP/knot"
    pidfile: "$TMP/knot/knot.pid"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$TMP/knot/db"
zone:
  - domain: bench.test
    storage: "$TMP"
    file: "bench.test.zone"
    journal-content: none
EOF

# bind9: one worker thread, authoritative only, in the foreground.
mkdir -p "$TMP/bind"
cat >"$TMP/named.conf" <<EOF
options {
    directory "$TMP/bind";
    pid-file "$TMP/bind/named.pid";
    session-keyfile "$TMP/bind/session.key";
    managed-keys-directory "$TMP/bind";
    listen-on port $BIND_PORT { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    dnssec-validation no;
    minimal-responses yes;
    allow-query { any; };
};
controls { };
zone "bench.test" { type primary; file "$TMP/bench.test.zone"; };
EOF

# A health endpoint that always answers 200 for geostamp's probes.
mkdir -p "$TMP/www/health"
echo ok >"$TMP/www/health/stamp"
cat >"$TMP/topology.yaml" <<EOF
name: bench
regions:
  - {name: westeurope, priority: 1, address: 127.0.1.1, address6: "fd00::1", origin: "http://127.0.0.1:$HTTP_PORT"}
  - {name: northeurope, priority: 2, address: 127.0.2.1, origin: "http://127.0.0.1:$HTTP_PORT"}
gslb:
  zone: bench.test.
  host: app
  ttl: 10s
  routing: priority
  listen: 127.0.0.1:$GS_PORT
  probe: {interval: 1s, timeout: 500ms, toleratedFailures: 3}
EOF

taskset -c "$CLIENT_CPU" python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$TMP/www" >"$TMP/http.log" 2>&1 &
pids+=($!)
taskset -c "$SERVER_CPU" knotd -c "$TMP/knot.conf" >"$TMP/knot.log" 2>&1 &
pids+=($!) pid_of[knot]=$!
taskset -c "$SERVER_CPU" named -g -n 1 -U 1 -c "$TMP/named.conf" >"$TMP/named.log" 2>&1 &
pids+=($!) pid_of[bind9]=$!
taskset -c "$SERVER_CPU" "$GEOSTAMP" gslb -f "$TMP/topology.yaml" --admin off --log-level warn >"$TMP/geostamp.log" 2>&1 &
pids+=($!) pid_of[geostamp]=$!

# Wait until each server answers the routed name as the static zone does
# (geostamp: TTL 10, i.e. both regions probed healthy, not the degraded TTL).
ready() { dig +norec +tries=1 +time=1 @127.0.0.1 -p "$1" app.bench.test A | grep -qE '^app\.bench\.test\.[[:space:]]+10[[:space:]]+IN[[:space:]]+A[[:space:]]+127\.0\.1\.1'; }
for name_port in geostamp:$GS_PORT knot:$KNOT_PORT bind9:$BIND_PORT; do
	name=${name_port%%:*} port=${name_port##*:}
	for i in $(seq 1 100); do
		ready "$port" && break
		if ((i == 100)); then
			echo "$name did not answer app.bench.test A on port $port; its log:" >&2
			cat "$TMP/$([[ $name == bind9 ]] && echo named || echo "$name").log" >&2
			exit 1
		fi
		sleep 0.2
	done
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user+system CPU of a process, all threads
HZ=$(getconf CLK_TCK)

run() { # name port -> prints "qps cpu%" (cpu%: the server's use of its core)
	local out t0 t1
	t0=$(ticks "${pid_of[$1]}")
	out=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$2" -d "$TMP/queries" -l "$DURATION" -c 2 -q 1000 -T 1 2>&1)
	t1=$(ticks "${pid_of[$1]}")
	echo "$out" >"$TMP/dnsperf-$1.log"
	local lost
	lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
	if [[ ${lost:-0} -gt $(($(echo "$out" | awk '/Queries sent:/ {print $3}') / 100)) ]]; then
		echo "warning: $1 lost $lost queries" >&2
	fi
	echo "$out" | awk -v c=$((t1 - t0)) -v hz="$HZ" -v d="$DURATION" '/Queries per second:/ {printf "%s %.0f\n", $4, 100 * c / hz / d}'
}

declare -A sum cpus
for name in geostamp knot bind9; do sum[$name]=0 cpus[$name]=0; done
echo
echo "dnsperf ${DURATION}s x $ROUNDS rounds per server; servers on cpu $SERVER_CPU, dnsperf on cpu $CLIENT_CPU"
for round in $(seq 1 "$ROUNDS"); do
	for name_port in geostamp:$GS_PORT knot:$KNOT_PORT bind9:$BIND_PORT; do
		name=${name_port%%:*} port=${name_port##*:}
		read -r qps cpu < <(run "$name" "$port")
		printf 'round %d  %-9s %12.0f qps   server cpu %3d%%\n' "$round" "$name" "$qps" "$cpu"
		sum[$name]=$(awk -v a="${sum[$name]}" -v b="$qps" 'BEGIN {print a + b}')
		cpus[$name]=$((cpus[$name] + cpu))
	done
done
mean() { awk -v s="${sum[$1]}" -v n="$ROUNDS" 'BEGIN {print s / n}'; }
# qps per second of server CPU: the server's capacity on one core, also
# when the single dnsperf core, not the server, limits the raw rate (a
# server below ~100% cpu was not saturated).
percpu() { awk -v s="${sum[$1]}" -v c="${cpus[$1]}" 'BEGIN {print (c > 0 ? 100 * s / c : 0)}'; }
g=$(mean geostamp) k=$(mean knot) b=$(mean bind9)
gc=$(percpu geostamp) kc=$(percpu knot) bc=$(percpu bind9)
echo
printf '%-16s %12s %10s %16s\n' "server" "mean qps" "cpu" "qps per cpu-s"
printf '%-16s %12.0f %9d%% %16.0f\n' \
	"geostamp gslb" "$g" $((cpus[geostamp] / ROUNDS)) "$gc" \
	"knot $(knotd -V | awk '{print $NF}')" "$k" $((cpus[knot] / ROUNDS)) "$kc" \
	"bind9 $(named -v | awk '{print $2}' | cut -d- -f1)" "$b" $((cpus[bind9] / ROUNDS)) "$bc"
echo
awk -v g="$g" -v k="$k" -v b="$b" -v gc="$gc" -v kc="$kc" -v bc="$bc" 'BEGIN {
	printf "geostamp/bind9 = %.2fx qps, %.2fx per cpu-s (target >= 1.0x) %s\n", g / b, gc / bc, (g / b >= 1.0 && gc / bc >= 1.0 ? "MET" : "MISSED")
	printf "geostamp/knot  = %.2fx qps, %.2fx per cpu-s (target >= 0.5x) %s\n", g / k, gc / kc, (g / k >= 0.5 && gc / kc >= 0.5 ? "MET" : "MISSED")
}'
