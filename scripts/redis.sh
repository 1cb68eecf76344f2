# Sourced by scripts that need a private Redis: `start_redis` starts a redis-server on a free
# loopback port in a temp directory (installing it with apt-get when missing), exports
# TICKETING_TEST_REDIS_URL, and stops it when the calling shell exits.

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
    trap stop_redis EXIT
    echo "redis-server for tests on 127.0.0.1:$port" >&2
}

stop_redis() {
    if [ -n "${REDIS_DIR:-}" ] && [ -s "$REDIS_DIR/redis.pid" ]; then
        kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    fi
    [ -n "${REDIS_DIR:-}" ] && rm -rf "$REDIS_DIR"
}
