# shellcheck shell=bash
# scripts/lib.sh: the helpers scripts/stack, scripts/monitor, scripts/backup
# and scripts/install share (sourced, never run).  The sourcing script sets
# PROG (its name, the prefix of its messages) first.

# die MSG / say MSG: a message prefixed with the script's name; die exits 1.
die() { echo "${PROG:-shop}: $*" >&2; exit 1; }
say() { echo "${PROG:-shop}: $*"; }

# ------------------------------------------------------------ processes

# pid_running PID: true while PID exists and is not a zombie (orphans wait
# for pid 1 to reap them, which may take a while in a container).
pid_running() {
    local st
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pid_alive PIDFILE NAME [comm|exe]: prints the pid when the file names a
# live process called NAME: by its comm (the default: what a process calls
# itself, e.g. shop-pool), or with exe by its executable's file name (comm
# is cut at 15 characters, too short for prometheus-mysqld-exporter).
pid_alive() {
    local pid name
    [ -s "$1" ] || return 0
    pid=$(cat "$1")
    { [ -n "$pid" ] && pid_running "$pid"; } || return 0
    case ${3:-comm} in
        comm) name=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0 ;;
        exe)  name=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
              name=${name##*/} ;;
        *)    die "pid_alive: ${3}: neither comm nor exe" ;;
    esac
    [ "$name" != "$2" ] || echo "$pid"
}

# stop_pids SIGNAL PID...: signals each and waits until all have exited
# (KILL for one still there after 30 s).
stop_pids() {
    local sig=$1; shift
    local pid deadline=$((SECONDS + 30))
    [ $# -gt 0 ] || return 0
    kill -s "$sig" "$@" 2>/dev/null || true
    for pid in "$@"; do
        while pid_running "$pid"; do
            if [ $SECONDS -ge $deadline ]; then
                kill -s KILL "$pid" 2>/dev/null || true
                deadline=$((SECONDS + 5))
            fi
            sleep 0.1
        done
    done
}

# stop_pidfile PIDFILE NAME [comm|exe]: stops the process the file names
# (see pid_alive) with TERM, waits for it, removes the file.
stop_pidfile() {
    local pid
    pid=$(pid_alive "$@")
    [ -z "$pid" ] || stop_pids TERM "$pid"
    rm -f "$1"
}

# ------------------------------------------------------------ HTTP

# http_code URL: the HTTP status of a GET, or 000 when nothing answers.
http_code() {
    python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

# wait_http URL CODE SECONDS WHAT [PID [LOG]]: polls until URL answers CODE;
# gives up at once if PID (the server being waited for; may be empty) exits.
# LOG, where to look when it fails, defaults to "its log under $STATE".
wait_http() {
    local deadline=$((SECONDS + $3)) code=000 log=${6:-its log under ${STATE:-the state dir}}
    while [ $SECONDS -lt $deadline ]; do
        if [ -n "${5:-}" ] && ! pid_running "$5"; then
            die "$4 exited while starting (see $log)"
        fi
        code=$(http_code "$1")
        [ "$code" = "$2" ] && return 0
        sleep 0.3
    done
    die "$4: $1 answered $code, not $2, after $3 s (see $log)"
}

# ------------------------------------------------------------ templates

# render TEMPLATE OUT NAME=VALUE...: TEMPLATE with each @NAME@ replaced by
# VALUE, written to OUT (renamed into place); fails, writing nothing, when a
# @PLACEHOLDER@ is left over outside a comment line.
render() {
    local in=$1 out=$2; shift 2
    local args=(-e '') kv v
    for kv in "$@"; do
        v=${kv#*=}
        v=${v//\\/\\\\}; v=${v//&/\\&}; v=${v//|/\\|}
        args+=(-e "s|@${kv%%=*}@|$v|g")
    done
    sed "${args[@]}" "$in" >"$out.tmp"
    if grep -n '^[[:space:]]*[^#[:space:]][^#]*@[A-Z][A-Z0-9_]*@' "$out.tmp" >&2; then
        rm -f "$out.tmp"
        die "render: $in: placeholder left over in $out (see above)"
    fi
    mv "$out.tmp" "$out"
}
