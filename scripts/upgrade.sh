#!/bin/sh
# Upgrades a running Kinto deployment with no downtime, as one CI job step (docs/upgrade.md):
#
#   1. kinto backoff SECONDS --for GUARD   clients slow down (and the toggle ends by itself)
#   2. kinto maintenance on --for GUARD    only with --maintenance: writes answered 503 + Retry-After
#   3. kinto migrate --check               exit 3 (pending) → kinto migrate
#   4. reload                              kinto reload (SIGHUP), kinto reload --restart (workers,
#                                          one at a time), or --restart-cmd (systemctl …)
#   5. kinto wait-ready                    the heartbeat answers 200
#   6. maintenance off, backoff off        ALWAYS, also when a step failed or the job is cancelled
#
# Usage: scripts/upgrade.sh [--ini FILE] [--url URL] [--backoff SECONDS] [--guard DURATION]
#                           [--maintenance] [--restart | --restart-cmd COMMAND] [--timeout DURATION]
#
# Environment: KINTO — the kinto command (default `kinto`; e.g. "node /srv/kinto-ops/bin/run.js");
#              KINTO_INI — default of --ini (else config/kinto.ini).
#
# Exit codes: 0 upgraded; 2 usage error; otherwise the exit code of the step that failed, as kinto
# documents it (1 failed, 4 migration lock held or the embedded database open in a running server,
# 5 drift). When turning the toggles off fails after a success, the exit code is 1.
set -u

KINTO=${KINTO:-kinto}
INI=${KINTO_INI:-config/kinto.ini}
URL=
BACKOFF=60
GUARD=1h
MAINTENANCE=0
MODE=reload
RESTART_CMD=
TIMEOUT=120

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit "$1"
}

need() {
  [ $# -ge 2 ] || { printf 'upgrade: %s needs a value\n' "$1" >&2; exit 2; }
}

while [ $# -gt 0 ]; do
  case "$1" in
    --ini) need "$@"; INI=$2; shift 2 ;;
    --url) need "$@"; URL=$2; shift 2 ;;
    --backoff) need "$@"; BACKOFF=$2; shift 2 ;;
    --guard) need "$@"; GUARD=$2; shift 2 ;;
    --maintenance) MAINTENANCE=1; shift ;;
    --restart) MODE=restart; shift ;;
    --restart-cmd) need "$@"; MODE=cmd; RESTART_CMD=$2; shift 2 ;;
    --timeout) need "$@"; TIMEOUT=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) printf 'upgrade: unknown argument %s (see --help)\n' "$1" >&2; exit 2 ;;
  esac
done

log() { printf 'upgrade: %s\n' "$*" >&2; }

# $KINTO is split on blanks on purpose ("node bin/run.js").
k() { $KINTO "$@"; }

BACKOFF_SET=0
MAINTENANCE_SET=0

finish() {
  rc=$?
  trap - EXIT INT TERM
  if [ "$MAINTENANCE_SET" = 1 ]; then
    if k maintenance off --ini "$INI"; then MAINTENANCE_SET=0; else
      log "ERROR: could not turn maintenance off; run: $KINTO maintenance off --ini $INI (it ends by itself after $GUARD)"
      [ "$rc" -eq 0 ] && rc=1
    fi
  fi
  if [ "$BACKOFF_SET" = 1 ]; then
    if k backoff off --ini "$INI"; then BACKOFF_SET=0; else
      log "ERROR: could not turn backoff off; run: $KINTO backoff off --ini $INI (it ends by itself after $GUARD)"
      [ "$rc" -eq 0 ] && rc=1
    fi
  fi
  if [ "$rc" -eq 0 ]; then log 'done: upgraded, backoff off.'; else log "FAILED (exit $rc); backoff and maintenance are off again."; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

run() {
  log "\$ kinto $*"
  k "$@"
  status=$?
  [ "$status" -eq 0 ] || { log "step failed: kinto $* (exit $status)"; exit "$status"; }
}

# Marked before the command runs: a backoff written to the file but not taken by every server
# (exit 1) must still be removed.
BACKOFF_SET=1
run backoff "$BACKOFF" --for "$GUARD" --ini "$INI"
if [ "$MAINTENANCE" = 1 ]; then
  MAINTENANCE_SET=1
  run maintenance on --for "$GUARD" --ini "$INI"
fi

log "\$ kinto migrate --check --ini $INI"
k migrate --check --ini "$INI"
status=$?
case "$status" in
  0) log 'schema current: nothing to migrate.' ;;
  3) run migrate --ini "$INI" ;;
  *) log "step failed: kinto migrate --check (exit $status)"; exit "$status" ;;
esac

case "$MODE" in
  reload) run reload --ini "$INI" ;;
  restart) run reload --restart --ini "$INI" ;;
  cmd)
    log "\$ $RESTART_CMD"
    sh -c "$RESTART_CMD"
    status=$?
    [ "$status" -eq 0 ] || { log "step failed: $RESTART_CMD (exit $status)"; exit "$status"; }
    ;;
esac

if [ -n "$URL" ]; then
  run wait-ready --url "$URL" --timeout "$TIMEOUT"
else
  run wait-ready --ini "$INI" --timeout "$TIMEOUT"
fi
exit 0
