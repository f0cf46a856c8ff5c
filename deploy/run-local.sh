#!/bin/sh
# Two fhegpt-server replicas (instances fhegpt-a and fhegpt-b, on free loopback ports) behind
# HAProxy (deploy/haproxy.cfg) on loopback. Runs in the foreground until SIGINT / SIGTERM, then
# stops all three. Prints "listening on http://127.0.0.1:PORT" (the balancer) once every part
# answers. Logs and process ids go to DIR (a.log, b.log, haproxy.log, a.pid, b.pid,
# haproxy.pid): stop a replica with `kill $(cat DIR/a.pid)` to see what its clients get.
#
# Usage: deploy/run-local.sh [--server PATH] [--port PORT] [--dir DIR] [-- SERVER_ARGS...]
#   --server  the fhegpt-server binary (default: build/tools/fhegpt-server/fhegpt-server)
#   --port    the balancer's port (default 8480)
#   --dir     where logs and pids go (default: a new temporary directory)
#   SERVER_ARGS go to both replicas (default: -m models/fhegpt-tiny --part layer0.head0)
# Run from the repository root (models/ and deploy/ resolve from there).
set -eu

server_bin=build/tools/fhegpt-server/fhegpt-server
port=8480
dir=
while [ $# -gt 0 ]; do
    case "$1" in
    --server) server_bin="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "run-local.sh: unknown option $1 (see the usage at the top of the script)" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || set -- -m models/fhegpt-tiny --part layer0.head0
command -v haproxy >/dev/null || { echo "run-local.sh: haproxy is not installed (scripts/install-deps.sh installs it)" >&2; exit 3; }
[ -x "$server_bin" ] || { echo "run-local.sh: no fhegpt-server at $server_bin (build it, or pass --server)" >&2; exit 2; }
[ -n "$dir" ] || dir=$(mktemp -d)
mkdir -p "$dir"
config=$(dirname "$0")/haproxy.cfg

pids=
stop_all() {
    trap - EXIT INT TERM
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 0' INT TERM

# Waits for "listening on URL" on a replica's stdout; prints the URL's HOST:PORT.
wait_listening() {
    i=0
    until grep -q '^listening on ' "$dir/$1.out"; do
        i=$((i + 1))
        if [ "$i" -gt 1200 ] || ! kill -0 "$2" 2>/dev/null; then
            echo "run-local.sh: replica $1 did not start; its log ($dir/$1.log):" >&2
            cat "$dir/$1.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    sed -n 's|^listening on http://||p' "$dir/$1.out"
}

for r in a b; do
    "$server_bin" "$@" --instance "fhegpt-$r" --host 127.0.0.1 --port 0 >"$dir/$r.out" 2>"$dir/$r.log" &
    echo $! >"$dir/$r.pid"
    pids="$pids $!"
done
FHEGPT_A_ADDR=$(wait_listening a "$(cat "$dir/a.pid")")
FHEGPT_B_ADDR=$(wait_listening b "$(cat "$dir/b.pid")")
FHEGPT_LB_BIND=127.0.0.1:$port
export FHEGPT_A_ADDR FHEGPT_B_ADDR FHEGPT_LB_BIND
haproxy -db -f "$config" >"$dir/haproxy.log" 2>&1 &
echo $! >"$dir/haproxy.pid"
pids="$pids $!"

# Ready once the balancer forwards a health check.
i=0
until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$(cat "$dir/haproxy.pid")" 2>/dev/null; then
        echo "run-local.sh: the balancer did not start; its log ($dir/haproxy.log):" >&2
        cat "$dir/haproxy.log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "replicas: fhegpt-a on $FHEGPT_A_ADDR, fhegpt-b on $FHEGPT_B_ADDR; logs in $dir"
echo "listening on http://127.0.0.1:$port"
# Until a signal (a replica stopped on purpose leaves the others running).
while :; do sleep 1; done
