#!/usr/bin/env bash
# Builds, once, the local Apache Kafka image used by the tests and the demo:
#   localhost/smmu-fleet-kafka:4.1.1
# No container registry is reachable, so the image is assembled from packages:
#   1. Kafka jars (+ an SLF4J binding) from Maven Central      test/infra/kafka/pom.xml
#   2. a Debian root filesystem with a Java 17 runtime          debootstrap --variant=minbase
#   3. both plus test/infra/kafka/{start-kafka.sh,log4j*.properties}, imported with `podman import`
# Jars, .deb files and the root filesystem tarball are cached under $SMMU_FLEET_CACHE
# (default /var/cache/smmu-fleet). The image carries a label with a hash of its inputs; when the
# image exists with the same hash nothing is done. Options: --force (rebuild the image),
# --clean-cache (also drop the cached jars and root filesystem first). Run as root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CTX="$HERE/kafka"
KAFKA_VERSION=4.1.1
IMAGE="localhost/smmu-fleet-kafka:${KAFKA_VERSION}"
CACHE="${SMMU_FLEET_CACHE:-/var/cache/smmu-fleet}"
SUITE=bookworm
JRE_PKG=openjdk-17-jre-headless
BASE_RECIPE=1 # bump when the root filesystem recipe below changes
LABEL=smmu-fleet.kafka.build-id

force=0
clean=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --clean-cache) force=1 clean=1 ;;
    *)
      echo "usage: $0 [--force] [--clean-cache]" >&2
      exit 2
      ;;
  esac
done

log() { printf '[kafka-image] %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
t_all=$(now)

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (debootstrap, podman storage)"
  exit 1
fi

# --- tools ----------------------------------------------------------------------------------
need=()
command -v podman >/dev/null 2>&1 || need+=(podman runc)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v flock >/dev/null 2>&1 || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
  t=$(now)
  log "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  log "tools installed: $(elapsed "$t")"
fi

build_id=$(
  {
    echo "kafka=$KAFKA_VERSION suite=$SUITE jre=$JRE_PKG base=$BASE_RECIPE"
    cat "${BASH_SOURCE[0]}" "$CTX/pom.xml" "$CTX/log4j.properties" "$CTX/log4j2.properties" "$CTX/start-kafka.sh"
  } | sha256sum | cut -c1-16
)

mkdir -p "$CACHE"
exec 9>"$CACHE/.kafka-image.lock"
flock -w 1200 9 || {
  log "could not lock $CACHE/.kafka-image.lock"
  exit 1
}

if [ "$force" = 0 ] && podman image exists "$IMAGE"; then
  have=$(podman image inspect --format "{{ index .Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)
  if [ "$have" = "$build_id" ]; then
    log "$IMAGE is up to date (build $build_id): $(elapsed "$t_all")"
    exit 0
  fi
  log "$IMAGE exists with build '${have}', inputs are now '${build_id}': rebuilding"
fi

if [ "$clean" = 1 ]; then
  log "dropping cached jars and root filesystems under $CACHE"
  rm -rf "$CACHE/kafka-$KAFKA_VERSION" "$CACHE/rootfs" "$CACHE/debs"
fi

WORK=$(mktemp -d "$CACHE/build.XXXXXX")
cleanup() {
  # debootstrap mounts proc/sys inside its target: never delete through a live mount.
  if [ -d "$WORK" ]; then
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

# --- 1. Kafka jars --------------------------------------------------------------------------
t=$(now)
pom_hash=$(sha256sum "$CTX/pom.xml" | cut -c1-12)
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs-$pom_hash"
if compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; then
  log "jars: cached in $LIBS"
else
  mkdir -p "$CACHE/kafka-$KAFKA_VERSION"
  log "jars: resolving with Maven"
  if ! mvn -q -B -Dstyle.color=never -f "$CTX/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$WORK/libs" >"$WORK/mvn.log" 2>&1; then
    log "Maven failed; its output:"
    cat "$WORK/mvn.log" >&2
    exit 1
  fi
  rm -rf "$LIBS"
  mv "$WORK/libs" "$LIBS"
fi
log "jars: $(find "$LIBS" -name '*.jar' | wc -l) jars, $(du -sh "$LIBS" | cut -f1): $(elapsed "$t")"

# --- 2. Debian root filesystem with a Java runtime --------------------------------------------
mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ { print u; exit }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

t=$(now)
BASE="$CACHE/rootfs/$SUITE-$JRE_PKG-r$BASE_RECIPE.tar"
if [ -s "$BASE" ]; then
  log "rootfs: cached $BASE"
else
  mkdir -p "$CACHE/rootfs" "$CACHE/debs"
  MIRROR=$(mirror)
  log "rootfs: debootstrap --variant=minbase $SUITE + $JRE_PKG from $MIRROR"
  if ! debootstrap --variant=minbase --include="$JRE_PKG" --cache-dir="$CACHE/debs" \
    "$SUITE" "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
    log "debootstrap failed; last lines of its log:"
    tail -n 30 "$WORK/debootstrap.log" >&2
    [ -f "$WORK/root/debootstrap/debootstrap.log" ] && tail -n 30 "$WORK/root/debootstrap/debootstrap.log" >&2
    exit 1
  fi
  log "rootfs: debootstrap done: $(elapsed "$t")"
  awk -v w="$WORK/root/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  R="$WORK/root"
  rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* \
    "$R"/usr/share/man/* "$R"/usr/share/locale/* "$R"/usr/share/info/* "$R"/var/log/* "$R/debootstrap"
  tar -C "$R" --numeric-owner -cf "$WORK/base.tar" .
  mv "$WORK/base.tar" "$BASE"
  rm -rf --one-file-system "$R"
fi
log "rootfs: $(du -h "$BASE" | cut -f1): $(elapsed "$t")"

# --- 3. image -------------------------------------------------------------------------------
t=$(now)
O="$WORK/overlay"
mkdir -p "$O/opt/kafka/libs" "$O/opt/kafka/config" "$O/opt/kafka/bin" "$O/var/lib/kafka/data"
cp "$LIBS"/*.jar "$O/opt/kafka/libs/"
cp "$CTX/log4j.properties" "$CTX/log4j2.properties" "$O/opt/kafka/config/"
install -m 0755 "$CTX/start-kafka.sh" "$O/opt/kafka/bin/start-kafka.sh"
cp "$BASE" "$WORK/image.tar"
tar -C "$O" --numeric-owner --owner=0 --group=0 -rf "$WORK/image.tar" ./opt/kafka ./var/lib/kafka
old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# No EXPOSE: podman's Docker-compatible API reports an exposed but unpublished port as a binding
# that never appears, and testcontainers then waits for it until it times out.
podman import --quiet \
  --change 'ENTRYPOINT ["/opt/kafka/bin/start-kafka.sh"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'WORKDIR /opt/kafka' \
  --change 'STOPSIGNAL SIGTERM' \
  --change "LABEL $LABEL=$build_id" \
  --change "LABEL org.opencontainers.image.version=$KAFKA_VERSION" \
  "$WORK/image.tar" "$IMAGE" >/dev/null
new_id=$(podman image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true
fi
log "image: imported $IMAGE (build $build_id): $(elapsed "$t")"

t=$(now)
java_version=$(podman run --rm --entrypoint java "$IMAGE" -version 2>&1)
log "image java: ${java_version%%$'\n'*}"
log "image: smoke check: $(elapsed "$t")"
log "total: $(elapsed "$t_all")"
