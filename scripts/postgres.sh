# Sourced by scripts that need a private PostgreSQL: `start_postgres` initdb's a cluster in a
# temp directory, starts it on a free loopback port (installing PostgreSQL with apt-get when
# missing), exports TICKETING_TEST_PG_URL and TICKETING_TEST_PG_CTL, and stops it and removes
# the directory when the calling shell exits (`stop_postgres` does the same earlier).
#
# TICKETING_TEST_PG_CTL is a command line without quotes or spaces inside its words (split it on
# whitespace); followed by `stop -m immediate`, `start` or `restart` it controls that server with
# the same settings (they live in the cluster's postgresql.conf, not on the command line). When
# run as root, PostgreSQL runs as an unprivileged user through `runuser`.
#
# Never uses a server someone else started: its own port, socket directory and data directory.

. "$(dirname "${BASH_SOURCE[0]}")/redis.sh" # free_port, on_exit

# Sets PG_BIN to a directory holding initdb, pg_ctl and postgres: the one on PATH, else the
# newest /usr/lib/postgresql/<version>/bin, else installs Debian's `postgresql` and looks again.
find_postgres_bin() {
    local initdb d
    initdb=$(command -v initdb 2>/dev/null || true)
    if [ -n "$initdb" ]; then
        d=$(dirname "$(readlink -f "$initdb")")
        if [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            PG_BIN=$d
            return 0
        fi
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
        PG_BIN=$d
        return 0
    fi
    return 1
}

ensure_postgres() {
    if find_postgres_bin; then
        return 0
    fi
    echo "PostgreSQL (initdb, pg_ctl, postgres) not found; installing it with apt-get" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # The package's own cluster may or may not get started (no init system in containers); this
    # script never uses it, only the server binaries.
    $sudo apt-get update -qq >&2 &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    find_postgres_bin || {
        echo "PostgreSQL still not found after apt-get install" >&2
        return 1
    }
}

# PostgreSQL refuses to run as root: then it runs as `postgres` (created when missing).
postgres_os_user() {
    if [ "$(id -u)" -ne 0 ]; then
        id -un
        return 0
    fi
    if ! id -u postgres >/dev/null 2>&1; then
        echo "creating system user postgres to run PostgreSQL for tests" >&2
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin postgres >&2
    fi
    echo postgres
}

start_postgres() {
    ensure_postgres
    local user run_as="" base port locale=C
    user=$(postgres_os_user)
    base=${TMPDIR:-/tmp}
    if [ "$(id -u)" -eq 0 ]; then
        run_as="runuser -u $user --"
        # From any working directory (a test's may be unreadable for that user).
        env -C / true 2>/dev/null && run_as="$run_as env -C /"
        base=/tmp # reachable by the unprivileged user, unlike e.g. a TMPDIR in a private home directory
    fi
    PG_TEST_DIR=$(mktemp -d "$base/ticketing-pg.XXXXXXXX")
    on_exit stop_postgres
    [ -n "$run_as" ] && chown "$user:" "$PG_TEST_DIR"
    locale -a 2>/dev/null | grep -ix 'c\.utf-\?8' >/dev/null && locale=C.UTF-8

    $run_as "$PG_BIN/initdb" -D "$PG_TEST_DIR/data" -U "$user" --encoding=UTF8 --locale="$locale" \
        --auth-local=trust --auth-host=trust --no-sync >"$PG_TEST_DIR/initdb.log" 2>&1 || {
        cat "$PG_TEST_DIR/initdb.log" >&2
        return 1
    }

    local ctl try
    for try in 1 2 3 4 5; do
        port=$(free_port)
        # Every setting lives in the cluster's own config, so `pg_ctl start` after a
        # `stop -m immediate` comes back exactly the same. fsync stays on: crash tests rely on
        # real commits.
        $run_as tee -a "$PG_TEST_DIR/data/postgresql.conf" >/dev/null <<EOF

# private server for the project's tests
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_TEST_DIR'
max_connections = 300
shared_buffers = 128MB
fsync = on
logging_collector = off
EOF
        ctl="${run_as:+$run_as }$PG_BIN/pg_ctl -D $PG_TEST_DIR/data -l $PG_TEST_DIR/postgres.log -w -t 60"
        if $ctl start >/dev/null 2>&1; then
            break
        fi
        # Most likely someone took the port between free_port and the bind: try another one.
        ctl=""
    done
    if [ -z "$ctl" ]; then
        echo "PostgreSQL for tests did not start; its log:" >&2
        cat "$PG_TEST_DIR/postgres.log" >&2 2>/dev/null
        return 1
    fi

    local isready=pg_isready
    [ -x "$PG_BIN/pg_isready" ] && isready="$PG_BIN/pg_isready"
    for _ in $(seq 1 200); do
        "$isready" -q -h 127.0.0.1 -p "$port" -U "$user" -d postgres && break
        sleep 0.05
    done

    export TICKETING_TEST_PG_URL="postgres://$user@127.0.0.1:$port/postgres"
    export TICKETING_TEST_PG_CTL="$ctl"
    echo "PostgreSQL for tests on 127.0.0.1:$port (data in $PG_TEST_DIR, $("$PG_BIN/postgres" --version))" >&2
}

stop_postgres() {
    [ -n "${PG_TEST_DIR:-}" ] || return 0
    local dir=$PG_TEST_DIR pid
    PG_TEST_DIR=""
    if [ -s "$dir/data/postmaster.pid" ]; then
        if ! ${TICKETING_TEST_PG_CTL:-false} stop -m fast -t 30 >/dev/null 2>&1; then
            pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
            [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null
            sleep 0.5
        fi
    fi
    rm -rf "$dir"
    unset TICKETING_TEST_PG_URL TICKETING_TEST_PG_CTL
}
