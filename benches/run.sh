#!/usr/bin/env bash
# HTTP load bench of the session check: every variant of bench-server (bare handlers, ours,
# peer session crates) under wrk, one after the other, on two pinned cores.
#
#   benches/run.sh
#
# Environment (defaults):
#   ROUNDS=3          how many times every variant runs; the table shows medians
#   DURATION=6s       length of each measured wrk run
#   WARMUP=1s         unmeasured wrk run before each measured one
#   CONNECTIONS=32    wrk connections (one wrk thread)
#   REDIS_URL=redis://127.0.0.1:6379   Redis for the *-redis variants (skipped if it
#                     does not answer PING)
#   SERVER_CPU=0 WRK_CPU=1   the cores the server and wrk are pinned to
#   VARIANTS="..."    the non-bare variants to run (default: all); each runs between two
#                     runs of its framework's bare baseline, and is compared with their mean
#   RESULTS=benches/RESULTS.md   where the table is written
#   PROFILE=release   the cargo profile bench-server is built with; `bench-lto` is release
#                     with `lto = "fat"` and `codegen-units = 1` (every variant alike)
#
# For each variant: start the server pinned to SERVER_CPU, read its `listening on` and
# `cookie:` lines (a sessionless variant gets an ignored cookie of the same size as ours), check
# the body once with curl (must be `bench-user`; without the cookie a session variant
# must answer 401), warm up, then run wrk pinned to WRK_CPU with the cookie and
# read requests/s, p99 latency and the server's CPU time (utime+stime from /proc/PID/stat,
# before and after the measured run) per completed request.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-6s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-32}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export REDIS_URL
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
RESULTS=${RESULTS:-$HERE/RESULTS.md}
PROFILE=${PROFILE:-release}
ALL_VARIANTS="axum-identity-layer axum-ours-memory axum-ours-redis axum-ours-memory-wrapped axum-ours-memory-handler axum-tower-sessions-memory axum-tower-sessions-moka axum-tower-sessions-redis actix-ours-memory actix-ours-redis actix-session-cookie actix-session-redis"
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
echo "== building bench-server (profile $PROFILE)" >&2
(cd "$ROOT" && cargo build --profile "$PROFILE" -p session-benches)
# cargo's own name for the dev profile's directory is `debug`.
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")/bench-server
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
declare -A RPS=() P99=() CPU_US=() CORE=() FW=() NOTE=() RATIO=() OVER=()
LAST_RPS='' LAST_CPU=''
declare -a NOTES=()

cpu_ticks() { # utime + stime of the whole process, in clock ticks
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

sessionless() { # variant: answers without any session check (bare, or bare under a no-op layer)
    [[ $1 == *-bare || $1 == *-identity-layer ]]
}

start_server() { # variant -> sets SERVER_PID, ADDR, COOKIE
    local variant=$1 log=$WORK/$1.log
    : >"$log"
    taskset -c "$SERVER_CPU" "$BIN" "$variant" >"$log" 2>&1 &
    SERVER_PID=$!
    ADDR='' COOKIE=''
    local want_cookie=1
    sessionless "$variant" && want_cookie=0
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

p99_us() { # wrk's latency (850.00us, 2.59ms, 1.02s) -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1000; else if (v ~ /s$/) f = 1000000; else f = 1
        printf "%.1f", n * f
    }'
}
last() { awk '{ print $NF }' <<<"$1"; }
median() { # space-separated numbers -> their median
    tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2
    }'
}
range() { # space-separated numbers -> "min–max"
    tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f–%.0f", lo, hi }'
}

run_variant() { # variant [label]
    local variant=$1 label=${2:-$1}
    echo "== $label" >&2
    start_server "$variant"
    # The sessionless variants get a cookie too, shaped like ours (`session=` and 108 base64url
    # characters) and ignored, so every variant reads and parses requests of the same size.
    sessionless "$variant" && COOKIE="session=$(head -c 81 /dev/urandom | base64 -w0 | tr '+/' '-_')"
    local -a header=(-H "Cookie: $COOKIE")

    local body
    body=$(curl -sS --max-time 5 "${header[@]}" "$ADDR/")
    [[ $body == "$EXPECTED_BODY" ]] || die "$label answered ${body@Q}, not $EXPECTED_BODY"
    if ! sessionless "$variant"; then
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

    [[ -n ${FW[$label]:-} ]] || ROWS+=("$label")
    FW[$label]=${variant%%-*}
    LAST_RPS=$rps
    LAST_CPU=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
    RPS[$label]+="$rps "
    P99[$label]+="$(p99_us "$p99") "
    CPU_US[$label]+="$LAST_CPU "
    CORE[$label]+="$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v s="$seconds" 'BEGIN { printf "%.0f", t / hz / s * 100 }') "
    echo "   $rps req/s, p99 $p99, server CPU $(last "${CPU_US[$label]}") µs/request, core $(last "${CORE[$label]}")%" >&2
}

# --- the runs ----------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
declare -a SKIPPED=()

# Each variant runs between two runs of its framework's bare baseline (the one after it is
# also the one before the framework's next variant), and is compared with their mean: the
# machine's drift then falls on both sides of each comparison, in either direction.
PREV_FW='' PREV_RPS='' PREV_CPU=''
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS" >&2
    for variant in $VARIANTS; do
        if [[ $variant == *-redis && $REDIS_OK == 0 ]]; then
            [[ $round == 1 ]] && SKIPPED+=("$variant")
            continue
        fi
        fw=${variant%%-*}
        if [[ $PREV_FW != "$fw" ]]; then
            run_variant "$fw-bare"
            PREV_RPS=$LAST_RPS PREV_CPU=$LAST_CPU
        fi
        before_rps=$PREV_RPS before_cpu=$PREV_CPU
        run_variant "$variant"
        rps=$LAST_RPS cpu=$LAST_CPU
        run_variant "$fw-bare"
        PREV_FW=$fw PREV_RPS=$LAST_RPS PREV_CPU=$LAST_CPU
        RATIO[$variant]+="$(awk -v a="$rps" -v b="$before_rps" -v c="$PREV_RPS" 'BEGIN { printf "%.4f", a / ((b + c) / 2) }') "
        OVER[$variant]+="$(awk -v a="$cpu" -v b="$before_cpu" -v c="$PREV_CPU" 'BEGIN { printf "%.3f", a - (b + c) / 2 }') "
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table ---------------------------------------------------------------------------
table() {
    echo "| variant | runs | requests/s (median) | requests/s (range) | p99 latency | throughput vs bare | server CPU µs/request | CPU µs/request over bare | server core busy |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    local label
    for label in "${ROWS[@]}"; do
        awk -v l="$label" -v runs="$(wc -w <<<"${RPS[$label]}")" -v rps="$(median "${RPS[$label]}")" \
            -v range="$(range "${RPS[$label]}")" -v p99="$(median "${P99[$label]}")" \
            -v cpu="$(median "${CPU_US[$label]}")" -v ratio="$(median "${RATIO[$label]:-1}")" \
            -v over="$(median "${OVER[$label]:-0}")" \
            -v core="$(median "${CORE[$label]}")" -v note="${NOTE[$label]:-}" 'BEGIN {
                p = (p99 >= 1000 ? sprintf("%.2f ms", p99 / 1000) : sprintf("%.0f µs", p99))
                printf "| %s%s | %d | %.0f | %s | %s | %.2f | %.2f | %+.2f | %.0f%% |\n",
                    l, (note == "" ? "" : " (" note "!)"), runs, rps, range, p, ratio, cpu, over, core
            }'
    done
}

CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
# Results files written by an earlier run change nothing that is built or run.
[[ -n $(git -C "$ROOT" status --porcelain -- . ':!benches/RESULTS*.md' 2>/dev/null) ]] && COMMIT="$COMMIT (with uncommitted changes)"
WRK_VERSION=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $2 }')

{
    echo "# Session check under HTTP load"
    echo
    echo "Written by \`benches/run.sh\`; run it again to refresh."
    echo
    echo "- Date: $STARTED"
    echo "- Machine: $(nproc) CPUs, $CPU_MODEL; load average $LOAD_BEFORE before, $LOAD_AFTER after"
    echo "- Commit: $COMMIT"
    echo "- Build: cargo profile \`$PROFILE\`$([[ $PROFILE == bench-lto ]] && echo ' (release with `lto = "fat"`, `codegen-units = 1`), for every variant alike')"
    echo "- Load: wrk $WRK_VERSION, \`-t1 -c$CONNECTIONS -d$DURATION --latency\` after a $WARMUP warm-up, pinned to CPU $WRK_CPU; the server (one worker thread) pinned to CPU $SERVER_CPU"
    echo "- Handler: \`GET /\` answers the session's user id (\`bench-user\`, an owned string in every variant); the bare variants answer it without any session check"
    echo "- Beyond the issue's variants: \`axum-identity-layer\` is the bare handler under a layer that does nothing, through \`Router::layer\` (what axum itself charges for any layer); \`axum-ours-memory-wrapped\` is our layer around the whole \`Router\`; \`axum-ours-memory-handler\` is our layer on the handler alone (\`Handler::layer\`)."
    echo "- Requests carry the variant's session cookie; the bare and identity-layer variants get an ignored cookie of the same size as ours (\`session=\` + 108 characters), so the difference is the check alone. The peers send their own cookies (tower-sessions: \`id=\` + 22 characters)."
    echo
    table
    echo
    echo "Every variant ran $ROUNDS times, in $ROUNDS rounds of all variants, each run between"
    echo "two runs of its framework's bare baseline. Throughput vs bare and CPU over bare"
    echo "compare each run with the mean of those two bare runs; every figure is the median"
    echo "over the rounds (the range of requests/s shows the run-to-run noise)."
    echo "Server CPU is utime+stime of the server process over a measured run, divided by"
    echo "the requests wrk completed; server core busy is that CPU time over the run's"
    echo "length (100% = the server's core saturated)."
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
