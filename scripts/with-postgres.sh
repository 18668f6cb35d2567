#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster, so the Postgres tests (the facilitator's
# shared registry, the agent's shared ledger) run instead of skipping:
#
#   scripts/with-postgres.sh cargo test --workspace
#
# The cluster lives in a fresh temporary directory, listens on 127.0.0.1 only, on a free port,
# with trust authentication (nothing but local test data in it), and is stopped and deleted when
# the command ends, whatever its outcome; the command's exit status is the script's. The command
# sees X402_AA_TEST_POSTGRES_URL. When that variable is already set, the command simply runs
# against the server it names.
set -euo pipefail

if [ -n "${X402_AA_TEST_POSTGRES_URL:-}" ]; then
    exec "$@"
fi

bindir=""
if command -v pg_config >/dev/null 2>&1; then
    bindir="$(pg_config --bindir)"
fi
if [ ! -x "$bindir/initdb" ]; then
    # Debian keeps the server binaries out of PATH, one directory per major version.
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
fi
if [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
    echo "with-postgres: no initdb/pg_ctl found (install the Debian package postgresql: make postgres)" >&2
    exit 1
fi

# initdb and the server refuse to run as root: run them as the postgres user then.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id -u postgres >/dev/null 2>&1; then
        echo "with-postgres: running as root but there is no postgres user to own the cluster" >&2
        exit 1
    fi
    as_owner=(runuser -u postgres --)
fi

dir="$(mktemp -d "${TMPDIR:-/tmp}/x402-aa-pg.XXXXXX")"
if [ "${#as_owner[@]}" -gt 0 ]; then
    chown postgres "$dir"
fi
data="$dir/data"
log="$dir/server.log"

stop() {
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_owner[@]}" "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
}

# A free port: ask the kernel for one, then start on it; another process may take it in between,
# so a failed start tries again on a new port.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
}
port=""
for _ in 1 2 3 4 5; do
    candidate="$(free_port)"
    # fsync off: a test cluster that is deleted afterwards needs no durability.
    if "${as_owner[@]}" "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 30 -o \
        "-c listen_addresses=127.0.0.1 -p $candidate -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
        port="$candidate"
        break
    fi
done
if [ -z "$port" ]; then
    echo "with-postgres: the server did not start; its log:" >&2
    cat "$log" >&2 || true
    exit 1
fi

export X402_AA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
echo "with-postgres: PostgreSQL on 127.0.0.1:$port (X402_AA_TEST_POSTGRES_URL), data in $dir" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
