# Shared by scripts/test and scripts/bench: installing and starting the servers the second backend
# needs (Redis, and SecantusDB, a MongoDB-wire server), on free ports, stopped when the script ends.
# Sourced, not run.

CACHE="${PROVIDER_DESK_CACHE:-$HOME/.cache/provider-desk}"
VENV="$CACHE/venv"
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/provider-desk-run.XXXXXX")"
STARTED_PIDS=()

cleanup() {
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Another install on the machine (an unattended upgrade, a second run) holds dpkg's lock for a
# while: apt waits up to ten minutes for it rather than failing at once.
APT_WAIT=(-o DPkg::Lock::Timeout=600)

apt_install() {
    echo "==> installing $* (apt)"
    if ! DEBIAN_FRONTEND=noninteractive as_root apt-get "${APT_WAIT[@]}" install -y -qq "$@" >"$RUN_DIR/apt.log" 2>&1; then
        as_root apt-get "${APT_WAIT[@]}" update -qq >>"$RUN_DIR/apt.log" 2>&1
        DEBIAN_FRONTEND=noninteractive as_root apt-get "${APT_WAIT[@]}" install -y -qq "$@" >>"$RUN_DIR/apt.log" 2>&1 \
            || { cat "$RUN_DIR/apt.log"; exit 1; }
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on 127.0.0.1:$1 (at most 60 s), naming $2 if it never does.
wait_for_port() {
    python3 - "$1" "$2" "$3" <<'EOF'
import socket, sys, time
port, name, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
deadline = time.time() + 60
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
print(f"{name} did not start on port {port}; its log:", file=sys.stderr)
print(open(log).read()[-4000:], file=sys.stderr)
sys.exit(1)
EOF
}

# Installs what is missing and starts Redis and $1 SecantusDB servers (one if not given), unless
# TEST_REDIS_URL / TEST_MONGODB_URI name servers already running. Sets TEST_REDIS_URL,
# TEST_MONGODB_URI (the servers' URIs separated by spaces), REDIS_SERVER and SECANTUSD.
start_backend_servers() {

    REDIS_SERVER="$(command -v redis-server || true)"
    if [ -z "$REDIS_SERVER" ]; then
        apt_install redis-server
        REDIS_SERVER="$(command -v redis-server)"
    fi

    SECANTUSD="$VENV/bin/secantusd-py"
    if [ ! -x "$VENV/bin/pip" ]; then
        mkdir -p "$CACHE"
        if ! python3 -m venv "$VENV" >"$RUN_DIR/venv.log" 2>&1; then
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    if [ ! -x "$VENV/bin/openapi-spec-validator" ] || [ ! -x "$SECANTUSD" ] || [ ! -x "$VENV/bin/schemathesis" ]; then
        echo "==> installing SecantusDB, openapi-spec-validator and schemathesis into $VENV (pip)"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check SecantusDB openapi-spec-validator schemathesis
    fi

    if [ -z "${TEST_REDIS_URL:-}" ]; then
        port="$(free_port)"
        mkdir -p "$RUN_DIR/redis"
        "$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --dir "$RUN_DIR/redis" --save "" --appendonly no \
            >"$RUN_DIR/redis.log" 2>&1 &
        STARTED_PIDS+=("$!")
        wait_for_port "$port" "redis-server" "$RUN_DIR/redis.log"
        TEST_REDIS_URL="redis://127.0.0.1:$port"
    fi

    # SecantusDB's writes slow down as its oplog grows (13 ms each at 5,000 entries, 25 ms at 50,000); the tests use no
    # change streams, so the oplog is kept short.
    if [ -z "${TEST_MONGODB_URI:-}" ]; then
        local uris=() server
        for server in $(seq "${1:-1}"); do
            port="$(free_port)"
            "$SECANTUSD" --host 127.0.0.1 --port "$port" --storage-path "$RUN_DIR/secantus-$server" \
                --log-level WARNING --oplog-max-entries 100 \
                >"$RUN_DIR/secantus-$server.log" 2>&1 &
            STARTED_PIDS+=("$!")
            wait_for_port "$port" "secantusd-py" "$RUN_DIR/secantus-$server.log"
            uris+=("mongodb://127.0.0.1:$port/?directConnection=true")
        done
        TEST_MONGODB_URI="${uris[*]}"
    fi
}
