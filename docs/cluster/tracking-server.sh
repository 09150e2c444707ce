#!/usr/bin/env bash
# The head node's MLflow tracking server, for cluster.yaml (AWS) and docs/cluster/onprem.yaml.
# Both configs run `bash ~/ablate/docs/cluster/tracking-server.sh start` in head_setup_commands.
#
#   start   make sure the database exists and the server answers on 127.0.0.1:$ABLATE_MLFLOW_PORT (5000)
#   stop    stop it (the systemd unit, or the background process this script started)
#   status  exit 0 when the server answers
#   unit    print the systemd unit that `start` installs
#   dump    write the database as plain SQL to ~/ablate-store/mlflow-DATE.sql.gz (PostgreSQL's pg_dump;
#           `ray rsync-down CONFIG '~/ablate-store' DIR` then copies it and the artifacts)
#
# Database (the backend store), in this order:
#   1. ~/.ablate/mlflow.env, a file outside the repository (mode 600), with one line
#        MLFLOW_BACKEND_STORE_URI=postgresql://USER:PASSWORD@HOST:5432/DB
#      e.g. a managed database (RDS). Its password never enters the repository or the command line.
#   2. otherwise, with passwordless sudo and apt (the AWS image; most lab machines): Debian/Ubuntu's
#      `postgresql` on the head, a role named after this user and a database `ablate_mlflow`, reached
#      over the local socket with peer authentication (no password exists at all). The URI is written to
#      ~/.ablate/mlflow.env.
#   3. neither: stop with an error that says how to provide one.
#
# Service: where systemd runs (the AWS image, a lab machine) the server is the unit `ablate-mlflow`
# (Restart=always, enabled at boot, after postgresql.service), so it comes back after a crash or a
# reboot of the head. Where it does not (a container) it is started in the background and says so;
# it then comes back only with the next `ray up`.
# Artifacts are stored under ~/ablate-store/artifacts and served through the server
# (--serve-artifacts), so every node and the driver reach them through the tracking URI.
set -euo pipefail

PORT="${ABLATE_MLFLOW_PORT:-5000}"
# Two request workers serve a driver and a browser; MLflow's default of 4 doubles the start-up time
# (each imports MLflow: 18 s against 46 s measured on a loaded 2-core machine) for no use here.
WORKERS="${ABLATE_MLFLOW_WORKERS:-2}"
STORE="$HOME/ablate-store"
ENVFILE="$HOME/.ablate/mlflow.env"
VENV="$HOME/ablate-venv"
UNIT=ablate-mlflow
LOCAL_DB=ablate_mlflow
PIDFILE="$STORE/mlflow.pid"

say() { echo "tracking-server: $*"; }
die() { echo "tracking-server: error: $*" >&2; exit 1; }
has_sudo() { sudo -n true 2>/dev/null; }
has_systemd() { [ -d /run/systemd/system ] && has_sudo; }

healthy() {
    "$VENV/bin/python" - "$PORT" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2)
EOF
}

backend_uri() {   # the URI from the env file, without the quotes a shell-style file may carry
    sed -n 's/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}MLFLOW_BACKEND_STORE_URI=//p' "$ENVFILE" | tail -n 1 |
        sed "s/^['\"]//; s/['\"][[:space:]]*\$//"
}

local_postgres() {
    say "installing PostgreSQL on the head (no $ENVFILE)"
    command -v apt-get > /dev/null || die "no apt-get here: write MLFLOW_BACKEND_STORE_URI=postgresql://... to $ENVFILE"
    # First boot of a cloud image: unattended-upgrades may hold dpkg's lock for minutes.
    sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
    sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q postgresql
    has_systemd && sudo systemctl enable --now postgresql
    has_systemd || sudo pg_ctlcluster "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
    local role="$USER"
    if [ -z "$(sudo -u postgres psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" ]; then
        sudo -u postgres createuser "$role"
    fi
    if [ -z "$(sudo -u postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$LOCAL_DB'")" ]; then
        sudo -u postgres createdb -O "$role" "$LOCAL_DB"
    fi
    (umask 077 && mkdir -p "$(dirname "$ENVFILE")" &&
        echo "MLFLOW_BACKEND_STORE_URI=postgresql://$role@/$LOCAL_DB?host=/var/run/postgresql" > "$ENVFILE")
}

unit() {
    local after="network-online.target" wants="network-online.target"
    if backend_uri | grep -q "host=/var/run/postgresql"; then
        after="$after postgresql.service"; wants="$wants postgresql.service"
    fi
    cat <<EOF
[Unit]
Description=MLflow tracking server for ablate (127.0.0.1:$PORT)
After=$after
Wants=$wants

[Service]
Type=simple
User=$USER
WorkingDirectory=$STORE
EnvironmentFile=$ENVFILE
Environment=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
ExecStart=$VENV/bin/mlflow server --artifacts-destination $STORE/artifacts --serve-artifacts --host 127.0.0.1 --port $PORT --workers $WORKERS
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
EOF
}

start_systemd() {
    local tmp
    tmp="$(mktemp)"
    unit > "$tmp"
    if ! sudo cmp -s "$tmp" "/etc/systemd/system/$UNIT.service"; then
        sudo install -m 644 "$tmp" "/etc/systemd/system/$UNIT.service"
        sudo systemctl daemon-reload
        sudo systemctl enable "$UNIT"
        sudo systemctl restart "$UNIT"
    else
        sudo systemctl enable --now "$UNIT"
    fi
    rm -f "$tmp"
}

start_background() {
    if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && healthy; then
        say "already running (pid $(cat "$PIDFILE"))"
        return
    fi
    healthy && die "port $PORT answers but not as this script's server: stop that process or set ABLATE_MLFLOW_PORT"
    say "no systemd here: starting in the background; it comes back only with the next \`ray up\`"
    # The URI goes through the environment, not argv: `ps` never shows a password. One simple command
    # in the background, so $! is the server itself, leader of its own session (setsid): `stop` ends
    # that process group.
    cd "$STORE"
    MLFLOW_BACKEND_STORE_URI="$(backend_uri)" MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
        setsid nohup "$VENV/bin/mlflow" server --artifacts-destination "$STORE/artifacts" --serve-artifacts \
        --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" > "$STORE/mlflow.log" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
}

start() {
    mkdir -p "$STORE/artifacts"
    if [ ! -s "$ENVFILE" ]; then
        has_sudo || die "no database: write MLFLOW_BACKEND_STORE_URI=postgresql://USER:PASSWORD@HOST:5432/DB to $ENVFILE (chmod 600), or give $USER passwordless sudo so that PostgreSQL can be installed here"
        local_postgres
    fi
    [ -n "$(backend_uri)" ] || die "$ENVFILE has no MLFLOW_BACKEND_STORE_URI= line"
    chmod 600 "$ENVFILE"
    if has_systemd; then start_systemd; else start_background; fi
    # The first start on an empty database creates MLflow's tables (about a minute).
    for _ in $(seq 1 240); do
        if healthy; then say "answering on http://127.0.0.1:$PORT"; return; fi
        if [ -s "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then break; fi   # it exited
        sleep 1
    done
    tail -n 30 "$STORE/mlflow.log" 2>/dev/null || sudo journalctl -u "$UNIT" -n 30 --no-pager || true
    die "the MLflow server did not come up on 127.0.0.1:$PORT (its log is above)"
}

stop() {
    if has_systemd && systemctl list-unit-files "$UNIT.service" > /dev/null 2>&1; then
        sudo systemctl stop "$UNIT" || true
    fi
    if [ -s "$PIDFILE" ]; then
        kill -TERM -- "-$(cat "$PIDFILE")" 2>/dev/null || true
        rm -f "$PIDFILE"
    fi
}

dump() {
    command -v pg_dump > /dev/null || die "pg_dump not found: apt-get install postgresql-client"
    local out
    out="$STORE/mlflow-$(date +%Y%m%d-%H%M%S).sql.gz"
    # The password (if the URI has one) goes to pg_dump through PGPASSWORD, never its argv.
    "$VENV/bin/python" - "$(backend_uri)" "$out" <<'EOF'
import gzip, os, shutil, subprocess, sys
from urllib.parse import unquote, urlsplit, urlunsplit

u = urlsplit(sys.argv[1])
if u.scheme.split("+")[0] not in ("postgresql", "postgres"):
    sys.exit(f"tracking-server: error: dump needs a PostgreSQL store, not {u.scheme}")
creds, _, host = u.netloc.rpartition("@")
user, _, secret = creds.partition(":")
uri = urlunsplit(("postgresql", f"{user}@{host}" if user else host, u.path, u.query, ""))
env = {**os.environ, **({"PGPASSWORD": unquote(secret)} if secret else {})}
with gzip.open(sys.argv[2], "wb") as f:         # streamed: a store of many metrics never sits in memory
    dump = subprocess.Popen(["pg_dump", "--no-owner", "--dbname", uri], stdout=subprocess.PIPE, env=env)
    shutil.copyfileobj(dump.stdout, f)
if dump.wait() != 0:
    os.unlink(sys.argv[2])
    sys.exit(f"tracking-server: error: pg_dump exited {dump.returncode}")
print(f"tracking-server: wrote {sys.argv[2]}")
EOF
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) healthy ;;
    unit) unit ;;
    dump) dump ;;
    *) die "unknown action '$1' (start, stop, status, unit, dump)" ;;
esac
