#!/usr/bin/env bash
# Runs the systemd units under a real systemd, with their full sandbox, in a podman container:
#   1. an image with systemd (the local Node.js base of build-images.sh + Debian's systemd)
#   2. the npm pack tarball installed with deploy/systemd/install.sh, as on a host
#   3. a Kafka broker in the same pod, the units started with systemctl
#   4. checks: each unit active; /healthz and /readyz of agent, collector and aggregator; the
#      agent runs as its dynamic user with CAP_DAC_OVERRIDE as its only capability, the
#      collector with none; the agent reads the kernel's tracing ring buffer (--source tracefs,
#      its own instance in the host's tracefs, under ProtectSystem=strict and
#      ProtectKernelTunables=yes) and keeps a stream open to the collector; `systemctl stop`
#      ends each unit with exit status 0 and the agent removes its instance.
# The container is privileged (systemd needs to set up namespaces for the sandbox, and tracefs
# must be writable); the agent's instance gets a unique name. Everything is removed on exit.
#   bash test/deploy/systemd-smoke.sh          (root; after npm run build, test/infra/kafka-image.sh
#                                               and test/deploy/build-images.sh's base image)
# Environment: SMMU_DIST (the build to pack, default dist/).
# ok and bad always succeed, so `cond && ok ... || bad ...` is an if-then-else here.
# shellcheck disable=SC2015
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DIST=${SMMU_DIST:-dist}
NODE_BASE=localhost/smmu-fleet-node:20-bookworm
SYS_IMAGE=localhost/smmu-fleet-systemd-test:1
KAFKA_IMAGE=localhost/smmu-fleet-kafka:4.1.1
POD=smmu-smoke-$$
INSTANCE=smmu-smoke-$$
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[systemd-smoke] %s\n' "$*" >&2; }
t_all=$(now)
passed=0
failed=0
ok() {
  passed=$((passed + 1))
  printf '  ok   %s\n' "$*"
}
bad() {
  failed=$((failed + 1))
  printf '  FAIL %s\n' "$*"
}

for img in "$NODE_BASE" "$KAFKA_IMAGE"; do
  podman image exists "$img" || {
    log "missing image $img (test/deploy/build-images.sh, test/infra/kafka-image.sh)"
    exit 1
  }
done
[ -f "$DIST/agent/src/cli.js" ] || {
  log "no build in $DIST"
  exit 1
}

W=$(mktemp -d)
cleanup() {
  if [ -n "${KEEP:-}" ]; then
    log "KEEP set: pod $POD left running; remove it with: podman pod rm -f $POD"
    return
  fi
  podman pod rm -f -t 5 "$POD" >/dev/null 2>&1 || true
  rmdir "/sys/kernel/tracing/instances/$INSTANCE" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

if ! podman image exists "$SYS_IMAGE"; then
  t=$(now)
  printf 'FROM %s\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd systemd-sysv >/dev/null && rm -rf /var/lib/apt/lists/*\n' "$NODE_BASE" |
    podman build --quiet -t "$SYS_IMAGE" -f - "$W" >/dev/null
  log "image $SYS_IMAGE: $(elapsed "$t")"
fi

# The package, as `npm pack` makes it, from this build.
t=$(now)
mkdir -p "$W/pkg" "$W/stage"
cp package.json LICENSE README.md "$W/pkg/"
(cd "$DIST" && tar --exclude=./test --exclude=./node_modules -cf - .) | (mkdir -p "$W/pkg/dist" && tar -C "$W/pkg/dist" -xf -)
(cd "$W/pkg" && npm pack --silent --pack-destination "$W/stage" >/dev/null)
cp -r deploy/systemd "$W/stage/systemd"
tarball=$(basename "$(ls "$W"/stage/smmu-fleet-*.tgz)")
log "packed $tarball: $(elapsed "$t")"

t=$(now)
podman pod create --name "$POD" >/dev/null
podman run -d --pod "$POD" --name "$POD-kafka" \
  -e KAFKA_LISTENERS=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093 \
  -e KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://127.0.0.1:9092 \
  -e KAFKA_HEAP_OPTS='-Xmx512m -Xms256m' "$KAFKA_IMAGE" >/dev/null
podman run -d --pod "$POD" --name "$POD-systemd" --privileged --systemd=always \
  -v "$W/stage:/stage:ro" "$SYS_IMAGE" /sbin/init >/dev/null
C=("podman" "exec" "$POD-systemd")
CI=("podman" "exec" "-i" "$POD-systemd")
for _ in $(seq 1 60); do
  state=$("${C[@]}" systemctl is-system-running 2>/dev/null || true)
  case "$state" in running | degraded) break ;; esac
  sleep 0.5
done
log "systemd in the container: ${state:-?}: $(elapsed "$t")"

t=$(now)
"${C[@]}" bash /stage/systemd/install.sh "/stage/$tarball" 2>&1 | grep -E '^\[install\] (installing|unit)' >&2
"${CI[@]}" sh -c "cat >/etc/smmu-fleet/collector.env" <<EOF
SMMU_COLLECTOR_LISTEN=127.0.0.1:7070
SMMU_COLLECTOR_HTTP_LISTEN=127.0.0.1:9471
SMMU_COLLECTOR_KAFKA_BROKERS=127.0.0.1:9092
SMMU_COLLECTOR_TOPIC_REPLICATION=1
EOF
"${CI[@]}" sh -c "cat >/etc/smmu-fleet/aggregator.env" <<EOF
SMMU_FLEET_HTTP_LISTEN=127.0.0.1:9472
SMMU_FLEET_KAFKA_BROKERS=127.0.0.1:9092
SMMU_FLEET_TOPIC_REPLICATION=1
EOF
"${CI[@]}" sh -c "cat >/etc/smmu-fleet/agent.env" <<EOF
SMMU_AGENT_COLLECTOR=127.0.0.1:7070
SMMU_AGENT_HTTP_LISTEN=127.0.0.1:9470
SMMU_AGENT_TRACEFS_INSTANCE=$INSTANCE
EOF
log "installed with deploy/systemd/install.sh: $(elapsed "$t")"

t=$(now)
for _ in $(seq 1 240); do
  klog=$(podman logs "$POD-kafka" 2>&1 || true)
  [[ "$klog" == *"Kafka Server started"* ]] && break
  sleep 0.5
done
log "Kafka: $(elapsed "$t")"

fetch() { # url -> status code
  "${C[@]}" node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(3000) }).then((r) => console.log(r.status), () => console.log(0))' "$1"
}
wait_status() { # label url
  local s=0
  for _ in $(seq 1 120); do
    s=$(fetch "$2")
    [ "$s" = 200 ] && break
    sleep 0.5
  done
  if [ "$s" = 200 ]; then ok "$1"; else bad "$1 (HTTP $s)"; fi
}
unit_pid() { "${C[@]}" systemctl show -p MainPID --value "$1"; }
# shellcheck disable=SC2016 # the awk program is single-quoted on purpose
status_field() { [ "$1" != 0 ] && "${C[@]}" awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

t=$(now)
"${C[@]}" systemctl daemon-reload
"${C[@]}" systemctl start smmu-collector.service smmu-fleet-aggregator.service smmu-agent.service
for u in smmu-collector smmu-fleet-aggregator smmu-agent; do
  port=$(case $u in smmu-agent) echo 9470 ;; smmu-collector) echo 9471 ;; *) echo 9472 ;; esac)
  wait_status "$u: /readyz answers 200" "http://127.0.0.1:$port/readyz"
  [ "$(fetch "http://127.0.0.1:$port/healthz")" = 200 ] && ok "$u: /healthz answers 200" || bad "$u: /healthz"
  if [ "$("${C[@]}" systemctl is-active "$u")" = active ]; then ok "$u: active"; else bad "$u: not active"; fi
done
apid=$(unit_pid smmu-agent)
cpid=$(unit_pid smmu-collector)
[ "$(status_field "$apid" Uid | head -c 1)" != 0 ] && [ "$(status_field "$apid" Uid)" != "" ] &&
  ok "smmu-agent: runs as uid $(status_field "$apid" Uid) (dynamic user)" || bad "smmu-agent: runs as root"
[ "$(status_field "$apid" CapEff)" = 0000000000000002 ] && [ "$(status_field "$apid" CapBnd)" = 0000000000000002 ] &&
  ok "smmu-agent: capabilities CapEff=CapBnd=CAP_DAC_OVERRIDE only" ||
  bad "smmu-agent: CapEff=$(status_field "$apid" CapEff) CapBnd=$(status_field "$apid" CapBnd)"
[ "$cpid" != 0 ] && [ "$(status_field "$cpid" CapEff)" = 0000000000000000 ] && [ "$(status_field "$cpid" CapBnd)" = 0000000000000000 ] &&
  ok "smmu-collector: no capabilities" || bad "smmu-collector: CapEff=$(status_field "$cpid" CapEff)"
[ "$(status_field "$cpid" NoNewPrivs)" = 1 ] && ok "smmu-collector: no_new_privs" || bad "smmu-collector: no_new_privs"
if [ -d "/sys/kernel/tracing/instances/$INSTANCE" ]; then
  ok "smmu-agent: created its tracefs instance instances/$INSTANCE under the sandbox"
else
  bad "smmu-agent: no tracefs instance $INSTANCE"
fi
event=$("${C[@]}" journalctl -u smmu-agent -o cat --no-pager | sed -n 's/.*"source":"\([^"]*\)".*"msg":"agent started".*/\1/p' | head -1)
[ -n "$event" ] && ok "smmu-agent: reads $event from the ring buffer" || bad "smmu-agent: no 'agent started' with a tracefs event"
"${C[@]}" test -s /var/lib/smmu-agent/agent-id && ok "smmu-agent: agent id in /var/lib/smmu-agent" ||
  bad "smmu-agent: no /var/lib/smmu-agent/agent-id"
# No IOMMU faults happen on a test machine, so there are no events to send: the check is that
# the collector holds the agent's open stream (batches through Kafka are covered by
# test/integration/deploy-units.test.ts).
connected=0
for _ in $(seq 1 60); do
  connected=$("${C[@]}" node -e 'fetch("http://127.0.0.1:9471/metrics").then((r) => r.text()).then((t) => console.log((/^smmu_collector_streams (\d+)/m.exec(t) || [0, 0])[1]), () => console.log(0))')
  [ "$connected" = 1 ] && break
  sleep 0.5
done
[ "$connected" = 1 ] && ok "smmu-collector: holds the agent's stream" || bad "smmu-collector: no agent stream"
log "running: $(elapsed "$t")"

t=$(now)
for u in smmu-agent smmu-fleet-aggregator smmu-collector; do
  "${C[@]}" systemctl stop "$u"
  st=$("${C[@]}" systemctl show -p ExecMainStatus --value "$u")
  res=$("${C[@]}" systemctl show -p Result --value "$u")
  [ "$st" = 0 ] && [ "$res" = success ] && ok "$u: stopped, exit status 0" || bad "$u: stop: status $st, result $res"
done
[ ! -d "/sys/kernel/tracing/instances/$INSTANCE" ] && ok "smmu-agent: removed its tracefs instance" ||
  bad "smmu-agent: left instances/$INSTANCE"
log "stop: $(elapsed "$t")"

if [ "$failed" -gt 0 ]; then
  for u in smmu-agent smmu-collector smmu-fleet-aggregator; do
    echo "--- journal of $u"
    "${C[@]}" journalctl -u "$u" -o cat --no-pager | tail -n 20
  done
  echo "systemd-smoke: $failed of $((passed + failed)) checks FAILED ($(elapsed "$t_all"))"
  exit 1
fi
echo "systemd-smoke: all $passed checks hold ($(elapsed "$t_all"))"
