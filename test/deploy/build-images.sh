#!/usr/bin/env bash
# Builds the smmu-fleet images from deploy/images/Dockerfile with podman, without a registry:
# the Node.js base image is assembled locally (like test/infra/kafka-image.sh does for Kafka)
# from the cached Debian root filesystem that kafka-image.sh makes with debootstrap, plus this
# machine's Node.js, npm and CA bundle; npm packages come from the npm registry during the build.
# Then each image is started once: --help for every program, `smmu-agent dump` decoding a few
# model events, and the agent reading tracefs the way the DaemonSet runs it.
#   bash test/deploy/build-images.sh            (as root; run test/infra/kafka-image.sh first)
# Environment: NODE_IMAGE (use this base instead of building one), TAG (default dev).
# test/run.sh runs it (non-fatal: it needs the npm registry from inside the build); about 35 s here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TAG=${TAG:-dev}
CACHE="${SMMU_FLEET_CACHE:-/var/cache/smmu-fleet}"
BASE_TAR="$CACHE/rootfs/bookworm-openjdk-17-jre-headless-r1.tar"
LOCAL_BASE=localhost/smmu-fleet-node:20-bookworm
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[build-images] %s\n' "$*" >&2; }
t_all=$(now)

if [ -z "${NODE_IMAGE:-}" ]; then
  if ! podman image exists "$LOCAL_BASE"; then
    t=$(now)
    [ -s "$BASE_TAR" ] || {
      log "no $BASE_TAR: run test/infra/kafka-image.sh first (it caches the Debian root filesystem)"
      exit 1
    }
    node_bin=$(readlink -f "$(command -v node)")
    npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
    [ -f "$npm_dir/package.json" ] || {
      log "cannot find npm's directory (got $npm_dir)"
      exit 1
    }
    W=$(mktemp -d)
    trap 'rm -rf "$W"' EXIT
    mkdir -p "$W/o/usr/local/bin" "$W/o/usr/local/lib/node_modules"
    cp "$node_bin" "$W/o/usr/local/bin/node"
    cp -a "$npm_dir" "$W/o/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$W/o/usr/local/bin/npm"
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$W/o/usr/local/bin/npx"
    # This machine's CA bundle, so that npm inside the build trusts what the host trusts.
    mkdir -p "$W/o/usr/local/share/ca-certificates"
    cp /etc/ssl/certs/ca-certificates.crt "$W/o/usr/local/share/ca-certificates/host-bundle.crt"
    cp "$BASE_TAR" "$W/base.tar"
    # Only new paths: the base has the directories above them (a layer allows no duplicates).
    tar -C "$W/o" --numeric-owner --owner=0 --group=0 -rf "$W/base.tar" \
      ./usr/local/bin/node ./usr/local/bin/npm ./usr/local/bin/npx ./usr/local/lib/node_modules \
      ./usr/local/share/ca-certificates/host-bundle.crt
    podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' --change 'CMD ["node"]' \
      --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/host-bundle.crt' \
      "$W/base.tar" "$LOCAL_BASE" >/dev/null
    log "base $LOCAL_BASE imported (node $(podman run --rm "$LOCAL_BASE" node --version)): $(elapsed "$t")"
  fi
  NODE_IMAGE=$LOCAL_BASE
fi

for target in agent collector fleet; do
  t=$(now)
  image="localhost/smmu-fleet-$target:$TAG"
  podman build --quiet -f deploy/images/Dockerfile --ignorefile deploy/images/Dockerfile.dockerignore \
    --build-arg "NODE_IMAGE=$NODE_IMAGE" --target "$target" -t "$image" . >/dev/null
  log "$image: built, $(podman image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }'): $(elapsed "$t")"
done

# sed, not head: head exits after one line, podman then writes into a closed pipe and fails.
podman run --rm "localhost/smmu-fleet-agent:$TAG" --help | sed -n 1p
podman run --rm "localhost/smmu-fleet-collector:$TAG" --help | sed -n 1p
podman run --rm "localhost/smmu-fleet-fleet:$TAG" --help | sed -n 1p
podman run --rm "localhost/smmu-fleet-agent:$TAG" dump --source model --rate 0 --dump-limit 3
uid=$(podman run --rm --entrypoint id "localhost/smmu-fleet-collector:$TAG" -u 2>/dev/null || echo '?')
log "collector image runs as uid $uid"

# The agent image as the DaemonSet runs it: uid 0 without any capability, read-only root file
# system, no new privileges, the host's tracefs read-only at /host/sys/kernel/tracing with its
# instances/ writable, NODE_NAME as host name. It must create its instance, answer /readyz
# and remove the instance on SIGTERM. (Needs tracefs with iommu:io_page_fault or the SMMU event.)
if [ -d /sys/kernel/tracing/instances ]; then
  name=smmu-image-probe-$$
  state=$(mktemp -d)
  podman run -d --name "$name" --cap-drop ALL --security-opt no-new-privileges --read-only --user 0:0 \
    -v /sys/kernel/tracing:/host/sys/kernel/tracing:ro -v /sys/kernel/tracing/instances:/host/sys/kernel/tracing/instances \
    -v "$state:/var/lib/smmu-agent" -e NODE_NAME=image-probe-node "localhost/smmu-fleet-agent:$TAG" \
    run --source tracefs --tracefs-path /host/sys/kernel/tracing --tracefs-instance "$name" \
    --state-dir /var/lib/smmu-agent --http-listen 127.0.0.1:9470 --collector 127.0.0.1:1 >/dev/null
  ready=""
  for _ in $(seq 1 40); do
    ready=$(podman exec "$name" node -e 'fetch("http://127.0.0.1:9470/readyz").then((r) => r.text()).then((t) => console.log(t.trim()), () => {})' 2>/dev/null || true)
    [ "$ready" = ready ] && break
    sleep 0.5
  done
  created=no
  [ -d "/sys/kernel/tracing/instances/$name" ] && created=yes
  podman stop -t 15 "$name" >/dev/null
  removed=yes
  [ -d "/sys/kernel/tracing/instances/$name" ] && removed=no
  # Not `podman logs | grep -q`: with pipefail, grep leaving early fails the pipe (SIGPIPE).
  logs=$(podman logs "$name" 2>&1)
  case "$logs" in *'"host":"image-probe-node"'*) host=yes ;; *) host=no ;; esac
  podman rm -f "$name" >/dev/null
  rmdir "/sys/kernel/tracing/instances/$name" 2>/dev/null || true
  rm -rf "$state"
  log "agent as in the DaemonSet (uid 0, no capabilities, tracefs read-only but instances/): ready=${ready:-no} instance created=$created removed=$removed host from NODE_NAME=$host"
  [ "$ready" = ready ] && [ "$created" = yes ] && [ "$removed" = yes ] && [ "$host" = yes ] || exit 1
fi
log "total: $(elapsed "$t_all")"
