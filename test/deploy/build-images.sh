#!/usr/bin/env bash
# Builds the smmu-fleet images from deploy/images/Dockerfile with podman, without a registry:
# the Node.js base image is assembled locally (like test/infra/kafka-image.sh does for Kafka)
# from the cached Debian root filesystem that kafka-image.sh makes with debootstrap, plus this
# machine's Node.js, npm and CA bundle; npm packages come from the npm registry during the build.
# Then each image is started once: --help for every program, and `smmu-agent dump` decoding a
# few model events.
#   bash test/deploy/build-images.sh            (as root; run test/infra/kafka-image.sh first)
# Environment: NODE_IMAGE (use this base instead of building one), TAG (default dev).
# Not part of test/run.sh: it needs the npm registry from inside the build and takes minutes.
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

podman run --rm localhost/smmu-fleet-agent:$TAG --help | head -1
podman run --rm localhost/smmu-fleet-collector:$TAG --help | head -1
podman run --rm localhost/smmu-fleet-fleet:$TAG --help | head -1
podman run --rm localhost/smmu-fleet-agent:$TAG dump --source model --rate 0 --dump-limit 3
uid=$(podman run --rm --entrypoint id localhost/smmu-fleet-collector:$TAG -u 2>/dev/null || echo '?')
log "collector image runs as uid $uid"
log "total: $(elapsed "$t_all")"
