#!/usr/bin/env bash
# Services the test suite needs on a fresh Debian machine (run as root):
#   - PostgreSQL (Debian package): a throw-away cluster on a free loopback port in a temp
#     dir, a test database, and its URL written to .test-services.env
#     (OPENDIP_TEST_PG_URL=...), which the store tests read (env var first, then the file);
#   - Debian's chromium (+ CJK fonts) for the Playwright browser test (never
#     `playwright install`);
#   - Debian's Java 17 for the Spark engine tests (docs/scale.md).
#
#   scripts/test-services.sh          # install if missing, start, write .test-services.env
#   scripts/test-services.sh stop     # stop the cluster started here and remove its dir
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="${OPENDIP_TEST_ENV_FILE:-$ROOT/.test-services.env}"

as_postgres() { runuser -u postgres -- "$@"; }

if [[ "${1:-}" == "stop" ]]; then
  if [[ -f "$ENV_FILE" ]]; then
    # shellcheck disable=SC1090
    source "$ENV_FILE"
    if [[ -n "${OPENDIP_TEST_PG_DIR:-}" && -d "$OPENDIP_TEST_PG_DIR/data" ]]; then
      as_postgres "$OPENDIP_TEST_PG_BIN/pg_ctl" -D "$OPENDIP_TEST_PG_DIR/data" -m fast stop || true
      rm -rf "$OPENDIP_TEST_PG_DIR"
    fi
    rm -f "$ENV_FILE"
  fi
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/test-services.sh: run as root (apt-get and the postgres user are needed)" >&2
  exit 1
fi

missing=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Chinese glyphs for the browser screenshots
[[ -d /usr/share/fonts/opentype/noto ]] || missing+=(fonts-noto-cjk)
# Java 17 for the Spark engine tests (pyspark comes from the [spark] extra)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if ((${#missing[@]})); then
  echo "安装 / installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PG_DIR="$(mktemp -d /tmp/opendip-pg.XXXXXX)"
chown postgres:postgres "$PG_DIR"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"

as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PG_DIR -c fsync=off" start >/dev/null
as_postgres "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres opendip_test

URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/opendip_test"
cat >"$ENV_FILE" <<ENV
export OPENDIP_TEST_PG_URL=$URL
export OPENDIP_TEST_PG_DIR=$PG_DIR
export OPENDIP_TEST_PG_BIN=$PG_BIN
ENV
echo "PostgreSQL 测试库 / test database: $URL"
echo "已写入 / written to: $ENV_FILE  (source it, or tests read it directly)"
