# shellcheck shell=bash
# scripts/lib.sh: the helpers scripts/stack, scripts/monitor, scripts/backup
# and scripts/install share (sourced, never run).  The sourcing script sets
# PROG (its name, the prefix of its messages) first.

# die MSG / say MSG: a message prefixed with the script's name; die exits 1.
die() { echo "${PROG:-shop}: $*" >&2; exit 1; }
say() { echo "${PROG:-shop}: $*"; }

# ------------------------------------------------------------ processes

# HAPROXY_MALLOC: the environment HAProxy runs with (the stack's and the
# installed unit's).  HAProxy 2.6 keeps only a few freed buffers per thread
# and gives the rest back to malloc; with the edge's 80 KiB buffers, glibc
# then returns the top of its heap to the kernel after every burst and
# page-faults it back on the next (measured: 166 us of HAProxy CPU per
# uncached product GET, 107 us with the heap kept).  A 32 MiB trim
# threshold keeps it; HAProxy's memory stays bounded by its maxconn.
HAPROXY_MALLOC="GLIBC_TUNABLES=glibc.malloc.trim_threshold=33554432"

# pid_running PID: true while PID exists and is not a zombie (orphans wait
# for pid 1 to reap them, which may take a while in a container).
# Builtins only (no fork): `scripts/stack status` asks this of every process.
pid_running() {
    local st=""
    # /proc/PID/stat: "pid (comm) S ...": the state follows the last ")".
    { read -r st; } 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    st=${st%% *}
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pid_alive PIDFILE NAME [comm|exe]: prints the pid when the file names a
# live process called NAME: by its comm (the default: what a process calls
# itself, e.g. shop-pool), or with exe by its executable's file name (comm
# is cut at 15 characters, too short for prometheus-mysqld-exporter).
pid_alive() {
    local pid name
    [ -s "$1" ] || return 0
    { read -r pid || [ -n "$pid" ]; } 2>/dev/null <"$1" || return 0
    { [ -n "$pid" ] && pid_running "$pid"; } || return 0
    case ${3:-comm} in
        comm) { read -r name; } 2>/dev/null <"/proc/$pid/comm" || return 0 ;;
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

# ------------------------------------------------------------ secrets, configs

# ensure_secrets DIR: generates what DIR lacks, once (later runs keep every
# secret: the DB has the passwords, clients hold tokens signed with the key):
# the DB passwords auth.pw product.pw order.pw notify.pw monitor.pw, the
# broker passwords amqp-auth.pw amqp-product.pw amqp-order.pw amqp-notify.pw
# amqp-revoke.pw (each RabbitMQ user, shop-<svc>), the Erlang cookie
# erlang.cookie the RabbitMQ nodes and rabbitmqctl share, service_token, and
# a P-256 JWT signing key jwt/<kid>.key.pem with its public half in
# jwt/public/<kid>.pem.  DIR and jwt/ are traversable, not listable (each file
# says who may read it), jwt/public/ is open; secrets 0600, public keys 0644.
ensure_secrets() {
    local dir=$1 name kid mask
    mask=$(umask)
    umask 077
    mkdir -p "$dir/jwt/public"
    chmod 711 "$dir" "$dir/jwt"
    chmod 755 "$dir/jwt/public"
    for name in auth product order notify monitor amqp-auth amqp-product amqp-order \
                amqp-notify amqp-revoke; do
        [ -s "$dir/$name.pw" ] || openssl rand -hex 24 >"$dir/$name.pw"
    done
    # The cookie: letters only, as Erlang writes its own.
    [ -s "$dir/erlang.cookie" ] \
        || openssl rand -hex 20 | tr 0-9a-f A-P | tr -d '\n' >"$dir/erlang.cookie"
    chmod 600 "$dir/erlang.cookie"
    [ -s "$dir/service_token" ] || openssl rand -hex 32 >"$dir/service_token"
    if ! ls "$dir"/jwt/*.key.pem >/dev/null 2>&1; then
        kid="k$(date -u +%Y%m%d)$(openssl rand -hex 4)"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out "$dir/jwt/$kid.key.pem" 2>/dev/null
        openssl pkey -in "$dir/jwt/$kid.key.pem" -pubout -out "$dir/jwt/public/$kid.pem"
    fi
    chmod 600 "$dir"/*.pw "$dir/service_token" "$dir"/jwt/*.key.pem
    chmod 644 "$dir"/jwt/public/*.pem
    umask "$mask"
}

# current_kid DIR: the kid of the newest signing key in DIR/jwt.
current_kid() {
    local f
    # shellcheck disable=SC2012  # kid names are [a-z0-9]
    f=$(ls -t "$1"/jwt/*.key.pem | head -n 1)
    f=${f##*/}
    echo "${f%.key.pem}"
}

# write_service_config SVC FILE SECRETS: the config of service SVC (auth,
# product, order; notify: the email consumer, its own DB user; revoke: the
# revocation consumer, no DB at all) into FILE (0600, renamed into place), its DB password,
# service token and signing key taken from the SECRETS dir (ensure_secrets).
# The one place that knows each service's keys; the values come from:
#   CONF_DB_HOST CONF_DB_PORT   the DB listener (required)
#   CONF_PRODUCT_URL            order: the product service (required)
#   CONF_DB_READ_HOST CONF_DB_READ_PORT  product: this host's own Galera
#                               node for reads (written only when set)
#   CONF_NOTE                   a comment line under the header (optional)
#   CONF_AMQP_HOSTS             the RabbitMQ nodes, host:port,... (optional:
#                               AMQP_* written only when set; the user is
#                               shop-<svc>, password amqp-<svc>.pw)
#   SHOP_LOG_LEVEL [info], SHOP_SWEEP_INTERVAL [5],
#   SHOP_RETENTION_INTERVAL [60], SHOP_REFRESH_RETENTION [2592000],
#   SHOP_RESERVATION_TTL [60], SHOP_IDEMPOTENCY_RETENTION [86400],
#   SHOP_FAILED_ORDER_RETENTION [604800] (docs/OPERATIONS.md),
#   SHOP_CONSUME_RETRY_MS [1000] (with CONF_AMQP_HOSTS), and
#   SHOP_FAULT_INJECTION=1 (tests only: honour X-Fault-Inject),
#   notify: CONF_SMTP_URL (required), CONF_MAIL_FROM [shop@shop.local];
#   revoke: nothing (the list's path comes per host in SHOP_REVOKE_FILE,
#   the queue revoke.<host> on its command line).
write_service_config() {
    local svc=$1 f=$2 sec=$3 kid mask
    mask=$(umask)
    umask 077
    {
        echo "# $svc service, generated by scripts/$PROG (write_service_config in scripts/lib.sh)"
        [ -z "${CONF_NOTE:-}" ] || echo "# $CONF_NOTE"
        if [ "$svc" != revoke ]; then
            echo "DB_HOST=${CONF_DB_HOST:?}"
            echo "DB_PORT=${CONF_DB_PORT:?}"
            echo "DB_NAME=shop_$svc"
            echo "DB_USER=shop_$svc"
            echo "DB_PASSWORD=$(cat "$sec/$svc.pw")"
        fi
        echo "JWT_PUBLIC_DIR=$sec/jwt/public"
        echo "LOG_LEVEL=${SHOP_LOG_LEVEL:-info}"
        # Tests only: X-Fault-Inject honoured (lib/server.c, cgi/order/handlers.c).
        if [ "${SHOP_FAULT_INJECTION:-0}" = 1 ]; then echo "ALLOW_FAULT_INJECTION=1"; fi
        if [ -n "${CONF_AMQP_HOSTS:-}" ]; then
            echo "# The broker (docs/EVENTS.md): the relay and the consumers."
            echo "AMQP_HOSTS=$CONF_AMQP_HOSTS"
            echo "AMQP_USER=shop-$svc"
            echo "AMQP_PASSWORD=$(cat "$sec/amqp-$svc.pw")"
            echo "# A consumer's first pause before giving a failed event back (ms)."
            echo "CONSUME_RETRY_MS=${SHOP_CONSUME_RETRY_MS:-1000}"
        fi
        case $svc in
            auth)
                kid=$(current_kid "$sec")
                echo "JWT_PRIVATE_KEY=$sec/jwt/$kid.key.pem"
                echo "JWT_KID=$kid"
                echo "RETENTION_INTERVAL=${SHOP_RETENTION_INTERVAL:-60}"
                echo "REFRESH_RETENTION=${SHOP_REFRESH_RETENTION:-2592000}" ;;
            product)
                echo "SERVICE_TOKEN=$(cat "$sec/service_token")"
                echo "RESERVATION_TTL=${SHOP_RESERVATION_TTL:-60}"
                if [ -n "${CONF_DB_READ_HOST:-}" ]; then
                    echo "# Product reads (get, list) from this host's own Galera node"
                    echo "# (the writer when it is down or not Synced)."
                    echo "DB_READ_HOST=$CONF_DB_READ_HOST"
                    echo "DB_READ_PORT=${CONF_DB_READ_PORT:?}"
                fi ;;
            order)
                echo "SERVICE_TOKEN=$(cat "$sec/service_token")"
                echo "PRODUCT_URL=${CONF_PRODUCT_URL:?}"
                echo "SWEEP_INTERVAL=${SHOP_SWEEP_INTERVAL:-5}"
                echo "RETENTION_INTERVAL=${SHOP_RETENTION_INTERVAL:-60}"
                echo "IDEMPOTENCY_RETENTION=${SHOP_IDEMPOTENCY_RETENTION:-86400}"
                echo "FAILED_ORDER_RETENTION=${SHOP_FAILED_ORDER_RETENTION:-604800}"
                ;;
            notify)
                echo "SMTP_URL=${CONF_SMTP_URL:?}"
                echo "MAIL_FROM=${CONF_MAIL_FROM:-shop@shop.local}" ;;
            revoke)
                echo "# How long auth's access tokens live (auth's ACCESS_TTL, default 900):"
                echo "# entries older than that may be dropped from the list."
                echo "ACCESS_TTL=900" ;;
            *) die "write_service_config: no service $svc" ;;
        esac
    } >"$f.tmp"
    umask "$mask"
    mv "$f.tmp" "$f"
}

# ------------------------------------------------------------ users

# ensure_system_users USER...: creates each system user (and its group) that
# is missing: no home, no login shell; an existing one is kept.  Two stacks
# may start at once: a useradd that lost the race finds the user there.
ensure_system_users() {
    local u
    for u in "$@"; do
        for _ in 1 2 3 4 5; do
            id -u "$u" >/dev/null 2>&1 && break
            useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin --comment "shop $u" "$u" 2>/dev/null && break
            sleep 0.$((RANDOM % 9 + 1))
        done
        id -u "$u" >/dev/null 2>&1 || die "cannot create the system user $u (useradd)"
    done
}

# ------------------------------------------------------------ RabbitMQ

# amqp_permissions SVC: the RabbitMQ permissions of service SVC's user
# shop-SVC on vhost /, as "configure write read" regexes (docs/EVENTS.md):
# order and auth publish only (their relays); product consumes its queue
# settle, notify (the email consumer) notify, revoke (the revocation
# consumers) revoke.<host>, each with its dead-letter queue.  A consumer's
# queue dead-letters through the default exchange, which declaring it (and
# replaying a dead letter) needs write access to.
amqp_permissions() {
    case $1 in
        order)   echo '^shop\.events$ ^shop\.events$ ^$' ;;
        product) echo '^(shop\.events|settle|settle\.dead)$ ^(settle|settle\.dead|amq\.default)$ ^(shop\.events|settle|settle\.dead)$' ;;
        auth)    echo '^shop\.events$ ^shop\.events$ ^$' ;;
        notify)  echo '^(shop\.events|notify|notify\.dead)$ ^(notify|notify\.dead|amq\.default)$ ^(shop\.events|notify|notify\.dead)$' ;;
        revoke)  echo '^(shop\.events|revoke\..+)$ ^(revoke\..+|amq\.default)$ ^(shop\.events|revoke\..+)$' ;;
        *) die "amqp_permissions: no service $1" ;;
    esac
}
