#!/usr/bin/env bash
# Idempotent host setup for the container-based tests (run as root).
#  - installs podman (netavark network stack), runc, protobuf-compiler, kcat, GNU time and xz (the e2e
#    benchmark), trace-cmd (replay interop tests), chromium (the browser the web page tests drive
#    headless); maven, a Java 17 runtime and curl when absent
#  - writes /etc/containers/containers.conf (runtime runc, nofile/nproc ulimits)
#  - starts the podman API service on unix:///run/podman/podman.sock if it does not answer
# Progress goes to stderr; stdout carries only KEY=VALUE lines to export (DOCKER_HOST,
# TESTCONTAINERS_RYUK_DISABLED, TESTCONTAINERS_HOST_OVERRIDE), e.g.
#   while IFS= read -r kv; do export "$kv"; done < <(bash test/infra/setup-host.sh)
set -euo pipefail

SOCK_PATH=/run/podman/podman.sock
SOCK_URL="unix://${SOCK_PATH}"
CONF=/etc/containers/containers.conf
SERVICE_LOG=/var/log/smmu-fleet-podman-service.log

log() { printf '[setup-host] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root"
  exit 1
fi

t_all=$(now)

# --- packages -------------------------------------------------------------------------------
t=$(now)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# netavark + aardvark-dns + iptables: the network stack podman gets with its recommended packages
# (without them apt would pick the CNI plugins instead); rootful port publishing needs iptables.
want=(podman runc netavark aardvark-dns iptables protobuf-compiler kcat time xz-utils curl ca-certificates trace-cmd chromium)
command -v mvn >/dev/null 2>&1 || want+=(maven)
# Kafka 4.x needs Java 17+; the host JVM also serves the bind-mount image fallback.
[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] || want+=(openjdk-17-jre-headless)
missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  log "packages present"
fi
log "packages: $(elapsed "$t")"

# --- containers.conf ------------------------------------------------------------------------
if [ -f "$CONF" ] && grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$CONF" &&
  grep -q 'nofile=4096:4096' "$CONF" && grep -q 'nproc=4096:4096' "$CONF"; then
  log "$CONF already configured"
else
  mkdir -p /etc/containers
  if [ -f "$CONF" ]; then cp -a "$CONF" "$CONF.bak.$(date +%s)"; fi
  cat >"$CONF" <<'CONFEOF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONFEOF
  log "wrote $CONF"
fi

# --- podman API service ---------------------------------------------------------------------
ping() { curl -sf --max-time 2 --unix-socket "$SOCK_PATH" http://d/_ping 2>/dev/null | grep -q OK; }
t=$(now)
if ping; then
  log "podman service already answering on $SOCK_URL"
else
  mkdir -p /run/podman
  rm -f "$SOCK_PATH"
  log "starting podman system service on $SOCK_URL (log: $SERVICE_LOG)"
  # Fully detached: no inherited stdio, own session, so a CI log pipe is never held open.
  setsid nohup podman system service --time=0 "$SOCK_URL" </dev/null >>"$SERVICE_LOG" 2>&1 &
  for _ in $(seq 1 150); do
    ping && break
    sleep 0.2
  done
  if ! ping; then
    log "podman service did not answer within 30s; last log lines:"
    tail -n 20 "$SERVICE_LOG" >&2 || true
    exit 1
  fi
  log "podman service up: $(elapsed "$t")"
fi

log "host setup total: $(elapsed "$t_all")"
echo "DOCKER_HOST=${SOCK_URL}"
echo "TESTCONTAINERS_RYUK_DISABLED=true"
# /.dockerenv exists on these machines, so testcontainers would otherwise take the podman bridge
# gateway as the host of published ports; they are published on loopback too.
echo "TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1"
