#!/usr/bin/env bash
# Validates the deployment files offline (no cluster, no running systemd, no network once the
# tools are cached) and prints every check:
#   1. systemd (deploy/systemd/): the units, TLS and Kafka drop-ins installed by install.sh into a
#      temporary root with stand-in programs at their ExecStart paths, checked with
#      `systemd-analyze verify --root` (any message fails), capability names, required
#      hardening, exposure score (`systemd-analyze security --offline`), ExecStart programs
#      are the package's bin entries, JSON configurations accepted by the programs.
#   2. Kubernetes (deploy/kubernetes/): every overlay rendered with kustomize, validated with
#      kubernetes-validate --strict against the API schemas of each version in K8S_VERSIONS,
#      then k8s_policy.py (rights, host access, probes, resources, selectors, TLS), and the
#      ConfigMaps' JSON files accepted by the programs. The base is schema-checked too.
#      Self-test: a rendered overlay with a forbidden capability and an unknown field must fail.
#   3. Grafana (deploy/grafana/): dashboard_check.py against agent/src/metrics.ts and
#      collector/ingest/metrics.ts.
#   4. Images (deploy/images/): every COPY source of the Dockerfile exists in the repository.
# Exit code 0 only when every check passed.
#
# Tools (installed once, idempotently, under $SMMU_FLEET_CACHE/deploy-tools, default
# /var/cache/smmu-fleet/deploy-tools): systemd-analyze (Debian package systemd, installed when
# missing), kubernetes-validate (PyPI, pinned, in its own virtualenv; it bundles the schemas),
# kustomize (the one built into kubectl when that is the pinned version, else built with
# `go install` from the Go module proxy).
# The programs' --config checks use the build in $SMMU_DIST (default dist/); without a build
# they are skipped with a note.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT_DIR=$(pwd)

K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.37.0"}
KV_VERSION=1.37.0
KUSTOMIZE_VERSION=v5.5.0
CACHE="${SMMU_FLEET_CACHE:-/var/cache/smmu-fleet}/deploy-tools"
DIST=${SMMU_DIST:-dist}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[validate] %s\n' "$*"; }
t_all=$(now)
passed=0
failed=()
ok() {
  passed=$((passed + 1))
  printf '  ok   %s\n' "$*"
}
bad() {
  failed+=("$*")
  printf '  FAIL %s\n' "$*"
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- tools --------------------------------------------------------------------------------------
t=$(now)
mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock -w 600 8 || {
  log "could not lock $CACHE/.lock"
  exit 1
}
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    log "missing $*: install it (apt-get install $*) or run as root"
    exit 1
  fi
  log "installing $* (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv

VENV="$CACHE/kubernetes-validate-$KV_VERSION"
if [ ! -f "$VENV/.complete" ]; then
  log "installing kubernetes-validate $KV_VERSION into $VENV"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-input "kubernetes-validate==$KV_VERSION"
  touch "$VENV/.complete"
fi
PY="$VENV/bin/python"
KV="$VENV/bin/kubernetes-validate"

KUSTOMIZE=()
if [ -x "$CACHE/bin/kustomize-$KUSTOMIZE_VERSION" ]; then
  KUSTOMIZE=("$CACHE/bin/kustomize-$KUSTOMIZE_VERSION" build)
elif command -v kubectl >/dev/null 2>&1 &&
  kubectl version --client 2>/dev/null | grep -qx "Kustomize Version: $KUSTOMIZE_VERSION"; then
  KUSTOMIZE=(kubectl kustomize)
elif command -v go >/dev/null 2>&1; then
  log "building kustomize $KUSTOMIZE_VERSION (go install, Go module proxy)"
  mkdir -p "$CACHE/bin"
  GOBIN="$WORK/gobin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  mv "$WORK/gobin/kustomize" "$CACHE/bin/kustomize-$KUSTOMIZE_VERSION"
  KUSTOMIZE=("$CACHE/bin/kustomize-$KUSTOMIZE_VERSION" build)
else
  log "no kustomize $KUSTOMIZE_VERSION: need kubectl with it built in, or Go to build it"
  exit 1
fi
flock -u 8
log "tools: systemd-analyze ($(systemd-analyze --version | head -1)), kubernetes-validate $KV_VERSION, kustomize $KUSTOMIZE_VERSION (${KUSTOMIZE[*]}): $(elapsed "$t")"

# Does the program accept this JSON configuration? `--config FILE --help` parses and type-checks
# every key without starting anything.
have_dist=0
[ -f "$DIST/agent/src/cli.js" ] && [ -f "$DIST/collector/ingest/cli.js" ] && have_dist=1
config_check() { # label program-js file
  if [ "$have_dist" = 0 ]; then
    printf '  skip %s: no build in %s/\n' "$1" "$DIST"
    return
  fi
  local out
  if out=$(node "$DIST/$2" --config "$3" --help 2>&1 >/dev/null); then
    ok "$1"
  else
    bad "$1: $out"
  fi
}

# --- 1. systemd ---------------------------------------------------------------------------------
t=$(now)
log "systemd units (deploy/systemd/)"
R="$WORK/root"
bash deploy/systemd/install.sh --root "$R" --units-only 2>/dev/null
# systemd-analyze resolves dependencies (sysinit.target, ...) and ExecStart inside the root.
mkdir -p "$R/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$R/usr/lib/systemd/"
UNITS=(smmu-agent.service smmu-collector.service smmu-fleet-aggregator.service)
declare -A DROPIN=([smmu-agent.service]=smmu-agent-tls.conf [smmu-collector.service]=smmu-collector-tls.conf)
for u in "${!DROPIN[@]}"; do
  mkdir -p "$R/etc/systemd/system/$u.d"
  cp "deploy/systemd/tls/${DROPIN[$u]}" "$R/etc/systemd/system/$u.d/tls.conf"
done
# Kafka credentials drop-ins (deploy/systemd/kafka/<unit>-kafka.conf).
for u in smmu-collector.service smmu-fleet-aggregator.service; do
  mkdir -p "$R/etc/systemd/system/$u.d"
  cp "deploy/systemd/kafka/${u%.service}-kafka.conf" "$R/etc/systemd/system/$u.d/kafka.conf"
done
bins=$(node -e 'console.log(Object.keys(require("./package.json").bin).join(" "))')
known_caps=" $(systemd-analyze capability 2>/dev/null | awk 'NR > 1 { printf "%s ", toupper($1) }')"
[ "${#known_caps}" -gt 100 ] || known_caps=""
for u in "${UNITS[@]}"; do
  f="$R/etc/systemd/system/$u"
  exec_start=$(sed -n 's/^ExecStart=//p' "$f")
  prog=${exec_start%% *}
  case " $bins " in
    *" $(basename "$prog") "*) ok "$u: ExecStart runs $(basename "$prog"), a bin entry of package.json" ;;
    *) bad "$u: ExecStart program $prog is not a bin entry of package.json ($bins)" ;;
  esac
  mkdir -p "$R$(dirname "$prog")"
  printf '#!/bin/sh\nexit 0\n' >"$R$prog"
  chmod 0755 "$R$prog"
done
for u in "${UNITS[@]}"; do
  f="$R/etc/systemd/system/$u"
  if out=$(systemd-analyze verify --root="$R" "$f" 2>&1) && [ -z "$out" ]; then
    ok "$u: systemd-analyze verify (with its drop-ins) reports nothing"
  else
    bad "$u: systemd-analyze verify: ${out:-exit code $?}"
  fi
  for key in CapabilityBoundingSet AmbientCapabilities; do
    # shellcheck disable=SC2013 # capabilities are space-separated words
    for cap in $(sed -n "s/^$key=//p" "$f"); do
      if [ -z "$known_caps" ] || [[ "$known_caps" == *" ${cap} "* ]]; then
        ok "$u: $key $cap is a capability systemd knows"
      else
        bad "$u: $key names unknown capability $cap"
      fi
    done
  done
  for want in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes DynamicUser=yes \
    Restart=on-failure RestartPreventExitStatus=2 ProtectKernelModules=yes SystemCallFilter=@system-service; do
    if grep -qx "$want" "$f"; then ok "$u: $want"; else bad "$u: missing $want"; fi
  done
  if grep -q '^MemoryDenyWriteExecute=yes' "$f"; then
    bad "$u: MemoryDenyWriteExecute=yes breaks V8's JIT"
  fi
  score=$(systemd-analyze security --offline=yes --root="$R" "$u" 2>/dev/null |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if systemd-analyze security --offline=yes --threshold=20 --root="$R" "$u" >/dev/null 2>&1; then
    ok "$u: exposure level ${score:-?} (systemd-analyze security, threshold 2.0)"
  else
    bad "$u: exposure level ${score:-?} is above 2.0"
  fi
done
agent_unit="$R/etc/systemd/system/smmu-agent.service"
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$agent_unit")
ambient=$(sed -n 's/^AmbientCapabilities=//p' "$agent_unit")
if [ "$caps" = CAP_DAC_OVERRIDE ] && [ "$ambient" = CAP_DAC_OVERRIDE ]; then
  ok "smmu-agent.service: only CAP_DAC_OVERRIDE (tracefs file permissions)"
else
  bad "smmu-agent.service: capabilities are '$caps' / '$ambient', expected CAP_DAC_OVERRIDE only"
fi
if grep -qx 'StateDirectory=smmu-agent' "$agent_unit" && grep -qx 'ReadWritePaths=-/sys/kernel/tracing/instances' "$agent_unit"; then
  ok "smmu-agent.service: writes only its state directory and tracefs instances/"
else
  bad "smmu-agent.service: StateDirectory=smmu-agent and ReadWritePaths=-/sys/kernel/tracing/instances expected"
fi
for u in smmu-collector.service smmu-fleet-aggregator.service; do
  f="$R/etc/systemd/system/$u"
  if grep -qx 'CapabilityBoundingSet=' "$f" && grep -qx 'AmbientCapabilities=' "$f" && ! grep -q '^ReadWritePaths=' "$f"; then
    ok "$u: no capabilities, no writable path"
  else
    bad "$u: expected empty CapabilityBoundingSet/AmbientCapabilities and no ReadWritePaths"
  fi
done
config_check "systemd agent.json accepted by smmu-agent" agent/src/cli.js deploy/systemd/agent.json
config_check "systemd collector.json accepted by smmu-collector" collector/ingest/cli.js deploy/systemd/collector.json
config_check "systemd aggregator.json accepted by smmu-fleet" collector/accounting/cli.js deploy/systemd/aggregator.json
log "systemd: $(elapsed "$t")"

# --- 2. Kubernetes ------------------------------------------------------------------------------
t=$(now)
log "Kubernetes manifests (deploy/kubernetes/), API versions: $K8S_VERSIONS"
render() { # dir out
  local err
  if err=$("${KUSTOMIZE[@]}" "$1" 2>&1 >"$2"); then
    ok "$1: kustomize renders $(grep -c '^kind:' "$2") objects"
    return 0
  fi
  bad "$1: kustomize failed: $err"
  return 1
}
schema() { # file label
  local v out
  for v in $K8S_VERSIONS; do
    if out=$("$KV" --strict --quiet -k "$v" "$1" 2>&1); then
      ok "$2: every object valid against the Kubernetes $v API schemas (strict)"
    else
      bad "$2: schema errors for Kubernetes $v: $out"
    fi
  done
}
if render deploy/kubernetes/base "$WORK/base.yaml"; then schema "$WORK/base.yaml" base; fi
mkdir -p "$WORK/configs"
overlays=()
for d in deploy/kubernetes/overlays/*/; do
  name=$(basename "$d")
  overlays+=("$name")
  render "$d" "$WORK/$name.yaml" || continue
  schema "$WORK/$name.yaml" "overlays/$name"
  if out=$("$PY" test/deploy/k8s_policy.py "$name" "$WORK/$name.yaml" "$WORK/configs"); then
    ok "overlays/$name: deployment rules ($(echo "$out" | tail -1 | sed 's/^[^:]*: //'))"
  else
    echo "$out" | grep -v '^  ok' | sed 's/^/    /'
    bad "overlays/$name: deployment rules"
  fi
done
for f in "$WORK"/configs/*.json; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .json)
  case "$n" in
    agent-*) config_check "overlays/${n#agent-}: agent.json accepted by smmu-agent" agent/src/cli.js "$f" ;;
    collector-*) config_check "overlays/${n#collector-}: collector.json accepted by smmu-collector" collector/ingest/cli.js "$f" ;;
    aggregator-*) config_check "overlays/${n#aggregator-}: aggregator.json accepted by smmu-fleet" collector/accounting/cli.js "$f" ;;
  esac
done
# Self-test: the checks must catch a broken overlay.
if [ -f "$WORK/dev.yaml" ]; then
  "$PY" - "$WORK/dev.yaml" "$WORK/broken.yaml" <<'PYEOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "DaemonSet":
        c = d["spec"]["template"]["spec"]["containers"][0]
        c["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
        c["readinessProbe"]["periodSecond"] = 10
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PYEOF
  if "$KV" --strict --quiet -k "${K8S_VERSIONS%% *}" "$WORK/broken.yaml" >/dev/null 2>&1; then
    bad "self-test: the schema check accepted an unknown field"
  else
    ok "self-test: the schema check rejects an unknown field"
  fi
  if "$PY" test/deploy/k8s_policy.py dev "$WORK/broken.yaml" >/dev/null 2>&1; then
    bad "self-test: the rules accepted an added capability"
  else
    ok "self-test: the rules reject an added capability"
  fi
fi
log "Kubernetes: $(elapsed "$t")"

# --- 3. Grafana ---------------------------------------------------------------------------------
t=$(now)
log "Grafana dashboards (deploy/grafana/)"
for f in deploy/grafana/*.json; do
  if out=$(python3 test/deploy/dashboard_check.py "$f" agent/src/metrics.ts collector/ingest/metrics.ts); then
    ok "$f: $(echo "$out" | head -1 | sed "s#^ *$f: ##")"
  else
    echo "$out" | grep FAIL | sed 's/^/    /'
    bad "$f: dashboard rules"
  fi
done
log "Grafana: $(elapsed "$t")"

# --- 4. Images ----------------------------------------------------------------------------------
log "Dockerfiles (deploy/images/)"
for f in deploy/images/Dockerfile*; do
  case "$f" in *.dockerignore) continue ;; esac
  [ -f "$f" ] || continue
  missing=()
  while read -r src; do
    [ -e "$ROOT_DIR/$src" ] || missing+=("$src")
  done < <(awk 'toupper($1) == "COPY" && $0 !~ /--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$f")
  if [ "${#missing[@]}" -eq 0 ]; then
    ok "$f: every COPY source exists"
  else
    bad "$f: COPY sources missing: ${missing[*]}"
  fi
  # The ignore file is an allow-list ("*", then "!path" lines): a COPY source it does not allow
  # is missing from the build context, and the build fails at that step.
  ignore="$f.dockerignore"
  if [ -f "$ignore" ] && grep -qx '\*' "$ignore"; then
    excluded=()
    while read -r src; do
      grep -qx "!${src%/}" "$ignore" || excluded+=("$src")
    done < <(awk 'toupper($1) == "COPY" && $0 !~ /--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$f")
    if [ "${#excluded[@]}" -eq 0 ]; then
      ok "$ignore: lets every COPY source into the build context"
    else
      bad "$ignore: keeps COPY sources out of the build context: ${excluded[*]} (add !<path> lines)"
    fi
  fi
done
# The agent's node flags (NODE_OPTIONS) are one setting in two places: the image and the unit.
unit_opts=$(sed -n 's/^Environment=NODE_OPTIONS=//p' deploy/systemd/smmu-agent.service)
image_opts=$(awk '$1 == "FROM" { stage = $NF } stage == "agent" && $1 == "ENV" && $2 ~ /^NODE_OPTIONS=/ { sub(/^NODE_OPTIONS=/, "", $2); print $2 }' deploy/images/Dockerfile)
if [ -n "$unit_opts" ] && [ "$unit_opts" = "$image_opts" ]; then
  ok "agent NODE_OPTIONS the same in the unit and the image: $unit_opts"
else
  bad "agent NODE_OPTIONS differ: unit '$unit_opts', image agent stage '$image_opts'"
fi

echo
total=$((passed + ${#failed[@]}))
if [ "${#failed[@]}" -gt 0 ]; then
  echo "validate: ${#failed[@]} of $total checks FAILED ($(elapsed "$t_all")):"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "validate: all $total checks hold ($(elapsed "$t_all"); overlays: ${overlays[*]}; Kubernetes $K8S_VERSIONS)"
