#!/usr/bin/env bash
# HTTP load bench of the session check: every variant of bench-server (bare handlers, ours,
# peer session crates) under wrk, one after the other, on two pinned cores.
#
#   benches/run.sh
#
# Environment (defaults):
#   DURATION=10s      length of each measured wrk run
#   WARMUP=2s         unmeasured wrk run before each measured one
#   CONNECTIONS=32    wrk connections (one wrk thread)
#   REDIS_URL=redis://127.0.0.1:6379   Redis for the *-redis variants (skipped if it
#                     does not answer PING)
#   SERVER_CPU=0 WRK_CPU=1   the cores the server and wrk are pinned to
#   VARIANTS="..."    the non-bare variants to run (default: all); the bare baselines
#                     always run, before and after them
#   RESULTS=benches/RESULTS.md   where the table is written
#
# For each variant: start the server pinned to SERVER_CPU, read its `listening on` and
# `cookie:` lines (a bare variant gets an ignored cookie of the same size as ours), check
# the body once with curl (must be `bench-user`; without the cookie a session variant
# must answer 401), warm up, then run wrk pinned to WRK_CPU with the cookie and
# read requests/s, p99 latency and the server's CPU time (utime+stime from /proc/PID/stat,
# before and after the measured run) per completed request.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-32}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export REDIS_URL
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
RESULTS=${RESULTS:-$HERE/RESULTS.md}
ALL_VARIANTS="axum-ours-memory axum-ours-redis axum-tower-sessions-memory axum-tower-sessions-moka axum-tower-sessions-redis actix-ours-memory actix-ours-redis actix-session-cookie actix-session-redis"
VARIANTS=${VARIANTS:-$ALL_VARIANTS}
EXPECTED_BODY=bench-user

SERVER_PID=''
WORK=$(mktemp -d)

alive() { # pid: running (not exited, not a zombie)
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

stop_server() { # SIGTERM, then SIGKILL after 3 s (a TERM that lands during start-up can be lost)
    [[ -n $SERVER_PID ]] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do
        alive "$SERVER_PID" || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=''
}

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "run.sh: $*" >&2
    exit 1
}

# --- tools -------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    echo "wrk not found: installing it (apt-get install -y wrk)" >&2
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
for tool in wrk taskset curl awk cargo git; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
CLK_TCK=$(getconf CLK_TCK)

# --- build -------------------------------------------------------------------------------
echo "== building bench-server (release)" >&2
(cd "$ROOT" && cargo build --release -p session-benches)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/bench-server
[[ -x $BIN ]] || die "no binary at $BIN"

# --- redis -------------------------------------------------------------------------------
redis_up() {
    if command -v redis-cli >/dev/null; then
        [[ $(timeout 3 redis-cli -u "$REDIS_URL" ping 2>/dev/null) == PONG ]]
        return
    fi
    local hostport=${REDIS_URL#*://}
    hostport=${hostport##*@}
    hostport=${hostport%%/*}
    hostport=${hostport%%\?*}
    local host=${hostport%:*} port=6379
    [[ $hostport == *:* ]] && port=${hostport##*:}
    timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port && printf 'PING\r\n' >&3 && IFS= read -r line <&3 && [[ \$line == +PONG* ]]" 2>/dev/null
}
REDIS_OK=1
if ! redis_up; then
    REDIS_OK=0
    echo "== Redis does not answer at $REDIS_URL: the *-redis variants are skipped" >&2
fi

# --- one variant -------------------------------------------------------------------------
# Results, by row label.
declare -a ROWS=()
declare -A RPS=() P99=() CPU_US=() CORE=() FW=() NOTE=()
declare -a NOTES=()

cpu_ticks() { # utime + stime of the whole process, in clock ticks
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

start_server() { # variant -> sets SERVER_PID, ADDR, COOKIE
    local variant=$1 log=$WORK/$1.log
    : >"$log"
    taskset -c "$SERVER_CPU" "$BIN" "$variant" >"$log" 2>&1 &
    SERVER_PID=$!
    ADDR='' COOKIE=''
    local want_cookie=1
    [[ $variant == *-bare ]] && want_cookie=0
    for _ in $(seq 1 300); do
        alive "$SERVER_PID" || { cat "$log" >&2; die "$variant exited at start-up"; }
        ADDR=$(sed -n 's/^listening on //p' "$log")
        COOKIE=$(sed -n 's/^cookie: //p' "$log")
        if [[ -n $ADDR ]] && { [[ $want_cookie == 0 ]] || [[ -n $COOKIE ]]; }; then
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2
    die "$variant did not print its address and cookie within 30 s"
}

run_variant() { # variant [label]
    local variant=$1 label=${2:-$1}
    echo "== $label" >&2
    start_server "$variant"
    # The bare variants get a cookie too, shaped like ours (`session=` and 108 base64url
    # characters) and ignored, so every variant reads and parses requests of the same size.
    [[ $variant == *-bare ]] && COOKIE="session=$(head -c 81 /dev/urandom | base64 -w0 | tr '+/' '-_')"
    local -a header=(-H "Cookie: $COOKIE")

    local body
    body=$(curl -sS --max-time 5 "${header[@]}" "$ADDR/")
    [[ $body == "$EXPECTED_BODY" ]] || die "$label answered ${body@Q}, not $EXPECTED_BODY"
    if [[ $variant != *-bare ]]; then
        local code
        code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$ADDR/")
        [[ $code == 401 ]] || die "$label answered $code without a session, not 401"
    fi

    taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "${header[@]}" "$ADDR/" >/dev/null
    local before after out=$WORK/$label.wrk
    before=$(cpu_ticks "$SERVER_PID")
    taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${header[@]}" "$ADDR/" >"$out"
    after=$(cpu_ticks "$SERVER_PID")
    stop_server

    local requests seconds rps p99 bad
    requests=$(awk '/ requests in / { print $1 }' "$out")
    seconds=$(awk '/ requests in / { sub(/s,$/, "", $4); print $4 }' "$out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    [[ -n $requests && -n $rps && -n $p99 ]] || { cat "$out" >&2; die "could not read wrk's output for $label"; }
    bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    if [[ -n $bad ]]; then
        NOTE[$label]="$bad non-2xx responses"
        NOTES+=("$label: $bad of $requests responses were not 2xx: the row is not valid.")
    fi
    if grep -q 'Socket errors' "$out"; then
        NOTES+=("$label: wrk $(grep 'Socket errors' "$out" | sed 's/^ *//')")
    fi

    ROWS+=("$label")
    FW[$label]=${variant%%-*}
    RPS[$label]=$rps
    P99[$label]=$p99
    CPU_US[$label]=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    CORE[$label]=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v s="$seconds" 'BEGIN { printf "%.0f", t / hz / s * 100 }')
    echo "   $rps req/s, p99 $p99, ${CPU_US[$label]} µs CPU/request, server core ${CORE[$label]}%" >&2
}

# --- the runs ----------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
declare -a SKIPPED=()

run_variant axum-bare "axum-bare (before)"
run_variant actix-bare "actix-bare (before)"
for variant in $VARIANTS; do
    if [[ $variant == *-redis && $REDIS_OK == 0 ]]; then
        SKIPPED+=("$variant")
        continue
    fi
    run_variant "$variant"
done
run_variant axum-bare "axum-bare (after)"
run_variant actix-bare "actix-bare (after)"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ---------------------------------------------------------------------------
avg() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
declare -A BASE_RPS=() BASE_CPU=()
for fw in axum actix; do
    BASE_RPS[$fw]=$(avg "${RPS[$fw-bare (before)]}" "${RPS[$fw-bare (after)]}")
    BASE_CPU[$fw]=$(avg "${CPU_US[$fw-bare (before)]}" "${CPU_US[$fw-bare (after)]}")
done

table() {
    echo "| variant | requests/s | p99 latency | throughput vs bare | server CPU µs/request | CPU µs/request over bare | server core busy |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    local label fw
    for label in "${ROWS[@]}"; do
        fw=${FW[$label]}
        awk -v l="$label" -v rps="${RPS[$label]}" -v p99="${P99[$label]}" -v cpu="${CPU_US[$label]}" \
            -v brps="${BASE_RPS[$fw]}" -v bcpu="${BASE_CPU[$fw]}" -v core="${CORE[$label]}" \
            -v note="${NOTE[$label]:-}" 'BEGIN {
                printf "| %s%s | %.0f | %s | %.2f | %.2f | %+.2f | %s%% |\n",
                    l, (note == "" ? "" : " (" note "!)"), rps, p99, rps / brps, cpu, cpu - bcpu, core
            }'
    done
}

CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
[[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null) ]] && COMMIT="$COMMIT (with uncommitted changes)"
WRK_VERSION=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')

{
    echo "# Session check under HTTP load"
    echo
    echo "Written by \`benches/run.sh\`; run it again to refresh."
    echo
    echo "- Date: $STARTED"
    echo "- Machine: $(nproc) CPUs, $CPU_MODEL; load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo "- Commit: $COMMIT"
    echo "- Load: wrk $WRK_VERSION, \`-t1 -c$CONNECTIONS -d$DURATION --latency\` after a $WARMUP warm-up, pinned to CPU $WRK_CPU; the server (one worker thread) pinned to CPU $SERVER_CPU"
    echo "- Handler: \`GET /\` answers the session's user id (\`bench-user\`, an owned string in every variant); the bare variants answer it without any session check"
    echo "- Requests carry the variant's session cookie; the bare variants get an ignored cookie of the same size as ours (\`session=\` + 108 characters), so the difference is the check alone. The peers send their own cookies (tower-sessions: \`id=\` + 22 characters)."
    echo
    table
    echo
    echo "Throughput vs bare and CPU over bare compare each row with its framework's bare"
    echo "baseline, the mean of the runs before and after the others (the bare rows against"
    echo "that mean show the run-to-run noise). Server CPU is utime+stime of the server"
    echo "process over the measured run, divided by the requests wrk completed; server core"
    echo "busy is that CPU time over the run's length (100% = the server's core saturated)."
    if ((${#SKIPPED[@]})); then
        echo
        echo "Skipped (Redis did not answer PING at \`$REDIS_URL\`): ${SKIPPED[*]}."
    fi
    if ((${#NOTES[@]})); then
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
} >"$RESULTS"

echo >&2
cat "$RESULTS"
