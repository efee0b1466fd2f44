#!/usr/bin/env bash
# Installs smmu-fleet on a systemd host from its npm pack tarball:
#   programs  $PREFIX/bin/{smmu-agent,smmu-collector,smmu-fleet}   (default PREFIX /opt/smmu-fleet)
#   units     /etc/systemd/system/{smmu-agent,smmu-collector,smmu-fleet-aggregator}.service
#   config    /etc/smmu-fleet/{agent,collector,aggregator}.{json,env}   (existing files are kept)
# then reloads systemd. It enables nothing: edit the configuration, then
#   systemctl enable --now smmu-collector          (collector hosts)
#   systemctl enable --now smmu-fleet-aggregator   (accounting hosts)
#   systemctl enable --now smmu-agent              (every host with an SMMU / IOMMU to watch)
# TLS: copy tls/*.conf as drop-ins; Kafka credentials: kafka/*.conf (see the files).
#
# Usage: install.sh [--prefix DIR] [--root DIR] [--units-only] [smmu-fleet-VERSION.tgz]
#   --prefix DIR   where the programs go (the units' ExecStart lines follow it)
#   --root DIR     install under DIR instead of / (packaging, tests); no systemctl call
#   --units-only   install units and configuration only, not the programs
# Needs Node.js 20+ (node in /usr/bin or /usr/local/bin) and npm; as root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=/opt/smmu-fleet
ROOT=
UNITS_ONLY=0
TARBALL=
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --units-only) UNITS_ONLY=1; shift ;;
    -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    *) TARBALL=$1; shift ;;
  esac
done
log() { printf '[install] %s\n' "$*" >&2; }
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac

if [ "$UNITS_ONLY" = 0 ]; then
  if [ -z "$TARBALL" ] || [ ! -f "$TARBALL" ]; then
    echo "install.sh: give the tarball made by \`npm pack\` (after npm ci && npm run build)" >&2
    exit 2
  fi
  log "installing $(basename "$TARBALL") into $ROOT$PREFIX"
  # A global install into its own prefix: $PREFIX/lib/node_modules/smmu-fleet with the
  # runtime dependencies only, and relative links in $PREFIX/bin.
  npm install --global --prefix "$ROOT$PREFIX" --omit=dev --no-audit --no-fund "$TARBALL" >&2
fi

units="$ROOT/etc/systemd/system"
conf="$ROOT/etc/smmu-fleet"
install -d -m 0755 "$units" "$conf"
for u in smmu-agent.service smmu-collector.service smmu-fleet-aggregator.service; do
  sed "s#/opt/smmu-fleet/#$PREFIX/#g" "$HERE/$u" >"$units/$u.tmp"
  chmod 0644 "$units/$u.tmp"
  mv "$units/$u.tmp" "$units/$u"
  log "unit $units/$u"
done
for f in agent.json collector.json aggregator.json agent.env collector.env aggregator.env; do
  if [ -e "$conf/$f" ]; then
    log "kept existing $conf/$f"
  else
    install -m 0644 "$HERE/$f" "$conf/$f"
    log "config $conf/$f"
  fi
done

if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  log "systemd reloaded; edit $conf/*.json, then: systemctl enable --now smmu-collector / smmu-fleet-aggregator / smmu-agent"
fi
