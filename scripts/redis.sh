# Sourced by scripts that need a private Redis: `start_redis` starts a redis-server on a free
# loopback port in a temp directory (installing it with apt-get when missing), exports
# TICKETING_TEST_REDIS_URL, and stops it when the calling shell exits.
#
# Also the one place for EXIT clean-ups of these sourced helpers (postgres.sh sources this file):
# `on_exit FUNC` registers FUNC and one EXIT trap runs them all (last registered first), so
# helpers don't overwrite each other's trap. Scripts sourcing them use on_exit, not trap … EXIT.

on_exit() {
    case " ${EXIT_CLEANUPS:-} " in
    *" $1 "*) ;;
    *) EXIT_CLEANUPS="$1 ${EXIT_CLEANUPS:-}" ;;
    esac
    trap run_exit_cleanups EXIT
}

run_exit_cleanups() {
    local f
    for f in ${EXIT_CLEANUPS:-}; do
        "$f" || true
    done
}

ensure_redis_server() {
    if command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    echo "redis-server not found; installing it with apt-get" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq redis-server >&2
}

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

start_redis() {
    ensure_redis_server
    REDIS_DIR=$(mktemp -d)
    on_exit stop_redis
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$REDIS_DIR" \
        --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" >/dev/null
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [ -s "$REDIS_DIR/redis.pid" ]; then
            break
        fi
        sleep 0.05
    done
    export TICKETING_TEST_REDIS_URL="redis://127.0.0.1:$port"
    echo "redis-server for tests on 127.0.0.1:$port" >&2
}

stop_redis() {
    if [ -n "${REDIS_DIR:-}" ] && [ -s "$REDIS_DIR/redis.pid" ]; then
        kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    fi
    [ -n "${REDIS_DIR:-}" ] && rm -rf "$REDIS_DIR"
}
