#!/usr/bin/env bash
# HTTP load bench of the session check: every variant of bench-server (bare handlers, ours,
# peer session crates) under wrk, one after the other, on two pinned cores; then some of
# them side by side with their bare baseline; then every one's instructions per request
# under callgrind.
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
#   SIDE_BY_SIDE="..." the variants also measured side by side with their framework's bare
#                     baseline, both servers on SERVER_CPU at once (default: the bare
#                     baselines themselves as a control, the identity layer, and ours with the
#                     memory store; empty to skip)
#   PAIRS=4           side-by-side runs per variant, half of them with the bare server started first
#   INSTRUCTIONS="..." the variants whose instructions per request are counted under valgrind's
#                     callgrind (default: every variant and both bare baselines; empty to
#                     skip; skipped without valgrind): the figure that does not move with the VM
#   RESULTS=benches/RESULTS.md   where the tables are written
#   PROFILE=release   the cargo profile bench-server is built with; `bench-lto` is release
#                     with `lto = "fat"` and `codegen-units = 1` (every variant alike)
#   FEATURES=         cargo features of session-benches to build with (default none), e.g.
#                     `quick-cache`: our variants' cache on quick_cache instead of moka
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
FEATURES=${FEATURES:-}
ALL_VARIANTS="axum-identity-layer axum-ours-memory axum-ours-memory-metrics axum-ours-redis axum-ours-memory-wrapped axum-ours-memory-handler axum-tower-sessions-memory axum-tower-sessions-moka axum-tower-sessions-redis actix-ours-memory actix-ours-memory-metrics actix-ours-redis actix-session-cookie actix-session-redis"
VARIANTS=${VARIANTS:-$ALL_VARIANTS}
SIDE_BY_SIDE=${SIDE_BY_SIDE-axum-bare axum-identity-layer axum-ours-memory axum-ours-memory-wrapped actix-bare actix-ours-memory}
PAIRS=${PAIRS:-4}
of_framework() { tr ' ' '\n' <<<"$ALL_VARIANTS" | grep "^$1-" | tr '\n' ' '; }
INSTRUCTIONS=${INSTRUCTIONS-axum-bare $(of_framework axum)actix-bare $(of_framework actix)}
EXPECTED_BODY=bench-user

SERVER_PID=''
SERVER_WRAPPER=() # what the server runs under (valgrind, for the instruction counts)
SERVERS=() # every server still running (two during a side-by-side run)
WORK=$(mktemp -d)

alive() { # pid: running (not exited, not a zombie)
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

stop_server() { # [pid] (default: every server): SIGTERM, then SIGKILL after 3 s (a TERM that lands during start-up can be lost)
    local pids=("$@") pid
    ((${#pids[@]})) || pids=("${SERVERS[@]}")
    ((${#pids[@]})) || return 0
    kill "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 30); do
            alive "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    local left=() s
    for s in "${SERVERS[@]}"; do
        [[ " ${pids[*]} " == *" $s "* ]] || left+=("$s")
    done
    SERVERS=("${left[@]}")
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
echo "== building bench-server (profile $PROFILE${FEATURES:+, features $FEATURES})" >&2
(cd "$ROOT" && cargo build --profile "$PROFILE" -p session-benches ${FEATURES:+--features "$FEATURES"})
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

start_server() { # variant [log name] -> sets SERVER_PID, ADDR, COOKIE
    local variant=$1 log=$WORK/${2:-$1}.log
    : >"$log"
    taskset -c "$SERVER_CPU" "${SERVER_WRAPPER[@]}" "$BIN" "$variant" >"$log" 2>&1 &
    SERVER_PID=$!
    SERVERS+=("$SERVER_PID")
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
range() { # space-separated numbers [digits after the point, default 0] -> "min–max"
    tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk -v d="${2:-0}" 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.*f–%.*f", d, lo, d, hi }'
}

check_server() { # variant label: checks the body once (and the 401 without a session) at ADDR with COOKIE
    local variant=$1 label=$2 body code
    body=$(curl -sS --max-time 5 -H "Cookie: $COOKIE" "$ADDR/")
    [[ $body == "$EXPECTED_BODY" ]] || die "$label answered ${body@Q}, not $EXPECTED_BODY"
    if ! sessionless "$variant"; then
        code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$ADDR/")
        [[ $code == 401 ]] || die "$label answered $code without a session, not 401"
    fi
}

serve() { # variant label [log name]: start_server, a same-sized ignored cookie for a sessionless variant, check_server
    start_server "$1" "${3:-$1}"
    # The sessionless variants get a cookie too, shaped like ours (`__Host-session=` and 108 base64url
    # characters) and ignored, so every variant reads and parses requests of the same size.
    sessionless "$1" && COOKIE="__Host-session=$(head -c 81 /dev/urandom | base64 -w0 | tr '+/' '-_')"
    check_server "$1" "$2"
}

load() { # duration cookie addr [wrk options]: one wrk thread on WRK_CPU, the same for every run
    taskset -c "$WRK_CPU" wrk -t1 -c"$CONNECTIONS" -d"$1" -H "Cookie: $2" "${@:4}" "$3/"
}

run_variant() { # variant [label]
    local variant=$1 label=${2:-$1}
    echo "== $label" >&2
    serve "$variant" "$label"

    load "$WARMUP" "$COOKIE" "$ADDR" >/dev/null
    local before after out=$WORK/$label.wrk
    before=$(cpu_ticks "$SERVER_PID")
    load "$DURATION" "$COOKIE" "$ADDR" --latency >"$out"
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

# --- side by side ------------------------------------------------------------------------
# From one run to the next this VM's speed moves by more than the few per cent measured
# above (bare axum has cost 7 and 10 µs of CPU per request in consecutive runs). Side by
# side, a variant and its framework's bare baseline share SERVER_CPU at the same moments,
# each under its own wrk on WRK_CPU, so both meet the same drift; each one's CPU time per
# request, from its own accounting, is compared. The requests each one serves depend on how
# the scheduler splits the core between them, so only the CPU figures are used.
declare -a SBS_ROWS=()
declare -A SBS_CPU=() SBS_BARE=() SBS_OVER=() SBS_RATIO=()

side_by_side() { # variant order: one run of variant beside its bare baseline; order `variant` or `bare` starts first
    local variant=$1 order=$2 bare=${1%%-*}-bare
    local -a names=("$variant" "$bare") pids=() addrs=() cookies=() wrks=() before=() after=() cpu=()
    local v=0 b=1 i requests
    [[ $order == bare ]] && names=("$bare" "$variant") v=1 b=0
    for i in 0 1; do
        serve "${names[i]}" "${names[i]}" "side-$i"
        pids[i]=$SERVER_PID addrs[i]=$ADDR cookies[i]=$COOKIE
    done
    for i in 0 1; do
        load "$WARMUP" "${cookies[i]}" "${addrs[i]}" >/dev/null &
        wrks[i]=$!
    done
    wait "${wrks[@]}"
    for i in 0 1; do before[i]=$(cpu_ticks "${pids[i]}"); done
    for i in 0 1; do
        load "$DURATION" "${cookies[i]}" "${addrs[i]}" >"$WORK/side-$i.wrk" &
        wrks[i]=$!
    done
    wait "${wrks[@]}"
    for i in 0 1; do after[i]=$(cpu_ticks "${pids[i]}"); done
    stop_server "${pids[@]}"
    for i in 0 1; do
        requests=$(awk '/ requests in / { print $1 }' "$WORK/side-$i.wrk")
        [[ -n $requests ]] || { cat "$WORK/side-$i.wrk" >&2; die "could not read wrk's output for ${names[i]} (side by side)"; }
        ! grep -q 'Non-2xx or 3xx responses' "$WORK/side-$i.wrk" || die "${names[i]} answered non-2xx responses side by side"
        cpu[i]=$(awk -v t=$((after[i] - before[i])) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
    done
    [[ -n ${SBS_CPU[$variant]:-} ]] || SBS_ROWS+=("$variant")
    SBS_CPU[$variant]+="${cpu[v]} "
    SBS_BARE[$variant]+="${cpu[b]} "
    SBS_OVER[$variant]+="$(awk -v a="${cpu[v]}" -v c="${cpu[b]}" 'BEGIN { printf "%.3f", a - c }') "
    SBS_RATIO[$variant]+="$(awk -v a="${cpu[v]}" -v c="${cpu[b]}" 'BEGIN { printf "%.4f", c / a }') "
    echo "   ${cpu[v]} µs/request beside the bare baseline's ${cpu[b]}" >&2
}

for pair in $(seq 1 "$PAIRS"); do
    for variant in $SIDE_BY_SIDE; do
        [[ $variant == *-redis && $REDIS_OK == 0 ]] && continue
        order=variant
        ((pair % 2)) || order=bare
        echo "== side by side, $pair of $PAIRS: $variant and ${variant%%-*}-bare, $order first" >&2
        side_by_side "$variant" "$order"
    done
done

# --- instructions ------------------------------------------------------------------------
# CPU time moves with the VM underneath; the instructions a request executes do not. Each
# variant runs twice under callgrind, for a short and a long wrk run, and the difference in
# instructions over the difference in requests is the cost of one request: start-up,
# connections and shut-down are the same in both runs and cancel. valgrind hides the CPU's
# SHA extensions, so SHA-256 runs in sha2's portable code there; it is counted apart.
declare -a INS_ROWS=()
declare -A INS=() INS_SHA=()

callgrind_run() { # variant duration -> sets CG_REQUESTS, CG_ALL, CG_SHA
    local variant=$1 out=$WORK/$1-$2.cg requests
    SERVER_WRAPPER=(valgrind --tool=callgrind --callgrind-out-file="$out")
    serve "$variant" "$variant (callgrind)" "callgrind"
    SERVER_WRAPPER=()
    CONNECTIONS=4 load "$2" "$COOKIE" "$ADDR" >"$WORK/callgrind.wrk"
    stop_server
    requests=$(awk '/ requests in / { print $1 }' "$WORK/callgrind.wrk")
    [[ -n $requests ]] && ! grep -q 'Non-2xx or 3xx responses' "$WORK/callgrind.wrk" \
        || { cat "$WORK/callgrind.wrk" >&2; die "$variant under callgrind: no valid wrk run"; }
    [[ -s $out ]] || die "$variant under callgrind: no profile written"
    CG_REQUESTS=$requests
    CG_ALL=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
    CG_SHA=$(callgrind_annotate --threshold=100 "$out" 2>/dev/null |
        awk '/sha2::sha256::/ { gsub(",", "", $1); n += $1 } END { print n + 0 }')
    [[ -n $CG_ALL ]] || die "$variant under callgrind: no totals in the profile"
}

if [[ -n ${INSTRUCTIONS// /} ]] && ! command -v valgrind >/dev/null; then
    NOTES+=("No instruction counts: valgrind is not installed (apt-get install valgrind).")
    INSTRUCTIONS=''
fi
for variant in $INSTRUCTIONS; do
    [[ $variant == *-redis && $REDIS_OK == 0 ]] && continue
    echo "== instructions: $variant" >&2
    callgrind_run "$variant" 2s
    n1=$CG_REQUESTS i1=$CG_ALL s1=$CG_SHA
    callgrind_run "$variant" 6s
    n2=$CG_REQUESTS i2=$CG_ALL s2=$CG_SHA
    ((n2 > n1 + 1000)) || die "$variant under callgrind: too few requests ($n1, then $n2)"
    INS_ROWS+=("$variant")
    INS[$variant]=$(((i2 - i1) / (n2 - n1)))
    INS_SHA[$variant]=$(((s2 - s1) / (n2 - n1)))
    echo "   ${INS[$variant]} instructions/request ($n1 and $n2 requests)" >&2
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

side_table() {
    echo "| variant | runs | server CPU µs/request | its bare baseline's, same moments | CPU µs/request over bare | throughput vs bare (bare's CPU ÷ variant's) | range of that |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    local label
    for label in "${SBS_ROWS[@]}"; do
        awk -v l="$label$([[ $label == *-bare ]] && echo ' (control: bare beside bare)')" \
            -v runs="$(wc -w <<<"${SBS_CPU[$label]}")" -v cpu="$(median "${SBS_CPU[$label]}")" \
            -v bare="$(median "${SBS_BARE[$label]}")" -v over="$(median "${SBS_OVER[$label]}")" \
            -v ratio="$(median "${SBS_RATIO[$label]}")" \
            -v range="$(range "${SBS_RATIO[$label]}" 2)" 'BEGIN {
                printf "| %s | %d | %.2f | %.2f | %+.2f | %.2f | %s |\n", l, runs, cpu, bare, over, ratio, range
            }'
    done
}

ins_table() {
    echo "| variant | instructions/request | over bare | of that, SHA-256 in portable code | over bare, SHA-256 left out |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    local label bare
    for label in "${INS_ROWS[@]}"; do
        bare=${INS[${label%%-*}-bare]:-}
        awk -v l="$label" -v n="${INS[$label]}" -v b="$bare" -v sha="${INS_SHA[$label]}" 'BEGIN {
            over = (b == "" ? "" : sprintf("%+d", n - b))
            printf "| %s | %d | %s | %s | %s |\n", l, n, over, (sha > 0 ? sha : ""), (b == "" ? "" : sprintf("%+d", n - b - sha))
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
    echo "- Build: cargo profile \`$PROFILE\`$([[ $PROFILE == bench-lto ]] && echo ' (release with `lto = "fat"`, `codegen-units = 1`), for every variant alike')$([[ -n $FEATURES ]] && echo ", features \`$FEATURES\`")"
    echo "- Our cache's table: $([[ $FEATURES == *quick-cache* ]] && echo quick_cache || echo moka)"
    echo "- Load: wrk $WRK_VERSION, \`-t1 -c$CONNECTIONS -d$DURATION --latency\` after a $WARMUP warm-up, pinned to CPU $WRK_CPU; the server (one worker thread) pinned to CPU $SERVER_CPU"
    echo "- Handler: \`GET /\` answers the session's user id (\`bench-user\`, an owned string in every variant); the bare variants answer it without any session check"
    echo "- Beyond the issue's variants: \`axum-identity-layer\` is the bare handler under a layer that does nothing, through \`Router::layer\` (what axum itself charges for any layer); \`axum-ours-memory-wrapped\` is our layer around the whole \`Router\`; \`axum-ours-memory-handler\` is our layer on the handler alone (\`Handler::layer\`); \`axum-ours-memory-metrics\` and \`actix-ours-memory-metrics\` are ours with a Prometheus recorder installed (every session metric recorded)."
    echo "- Requests carry the variant's session cookie; the bare and identity-layer variants get an ignored cookie of the same size as ours (\`__Host-session=\` + 108 characters), so the difference is the check alone. The peers send their own cookies (tower-sessions: \`id=\` + 22 characters)."
    if ((${#ROWS[@]})); then
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
    fi
    if ((${#SBS_ROWS[@]})); then
        echo
        echo "## Side by side"
        echo
        echo "Each of these variants also ran $PAIRS times beside its framework's bare baseline:"
        echo "both servers on CPU $SERVER_CPU at the same moments, each under its own wrk (the same"
        echo "options) on CPU $WRK_CPU, half of the runs with the bare server started first. Both meet"
        echo "the same drift, which the runs above, one after the other, cannot cancel. Each figure"
        echo "is the median over the runs; CPU time per request is each server's own, so how the"
        echo "scheduler splits the core between the two does not enter. Throughput vs bare is what"
        echo "the two CPU costs give a server that has a core to itself."
        echo
        side_table
    fi
    if ((${#INS_ROWS[@]})); then
        echo
        echo "## Instructions per request"
        echo
        echo "Counted by valgrind's callgrind, in user space only (the kernel's reads and writes"
        echo "of the same bytes are not counted). Each variant ran twice"
        echo "under callgrind, under \`wrk -t1 -c4\` for 2 s and then 6 s; the extra instructions"
        echo "over the extra requests are one request's, with start-up and connections cancelled"
        echo "out. These counts do not move with the VM's speed or its neighbours. valgrind hides"
        echo "the CPU's SHA extensions, so the MAC's two SHA-256 compressions run in sha2's"
        echo "portable code here (counted apart); with SHA-NI, on every VM measured so far,"
        echo "they are about 400 instructions (sha2's SHA-NI loop: 192 instructions a block)."
        echo
        ins_table
    fi
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
