# Sourced by test/run.sh and deploy/demo/demo.sh (from the repository root): everything the
# tests and the demo need on this machine, each step skipped when already done.
#   1. npm ci when node_modules is missing or older than package-lock.json
#   2. host setup (podman API service, packages)       test/infra/setup-host.sh   } skipped when
#   3. the local Kafka image                            test/infra/kafka-image.sh  } KAFKA_BROKERS is set
#   4. npm run build
# Leaves `timings` (one line per step) and exports DOCKER_HOST etc. for testcontainers.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[prepare] %s\n' "$*" >&2; }
timings=()
step() { timings+=("$(printf '%-14s %s' "$1" "$2")"); }
t_all=$(now)

# --- 1. dependencies ------------------------------------------------------------------------
t=$(now)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2
  step "npm ci" "$(elapsed "$t")"
else
  step "npm ci" "skipped (node_modules up to date)"
fi

# --- 2./3. containers and the Kafka image ---------------------------------------------------
export SMMU_TEST_RUN_ID="${SMMU_TEST_RUN_ID:-run-$$-$(date +%s)}"
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup_containers() {
  command -v podman >/dev/null 2>&1 || return 0
  local ids
  ids=$(podman ps -aq --filter "label=smmu-fleet.test.kafka=${SMMU_TEST_RUN_ID}" 2>/dev/null || true)
  if [ -n "$ids" ]; then
    log "removing broker containers left by this run: $(echo "$ids" | tr '\n' ' ')"
    # shellcheck disable=SC2086 # one id per word
    podman rm -f -v $ids >/dev/null 2>&1 || true
  fi
}

if [ -n "${KAFKA_BROKERS:-}" ]; then
  log "KAFKA_BROKERS=$KAFKA_BROKERS: no local broker, skipping host setup and image build"
  step "host setup" "skipped (KAFKA_BROKERS)"
  step "kafka image" "skipped (KAFKA_BROKERS)"
elif [ "$(id -u)" -ne 0 ]; then
  log "not root: skipping host setup and image build; using DOCKER_HOST=${DOCKER_HOST:-<unset>}"
  step "host setup" "skipped (not root)"
  step "kafka image" "skipped (not root)"
else
  t=$(now)
  envlines=$(bash test/infra/setup-host.sh)
  while IFS= read -r kv; do
    [ -n "$kv" ] && export "${kv?}"
  done <<<"$envlines"
  step "host setup" "$(elapsed "$t")"
  t=$(now)
  bash test/infra/kafka-image.sh
  step "kafka image" "$(elapsed "$t")"
  trap cleanup_containers EXIT
fi

# --- 4. build -------------------------------------------------------------------------------
t=$(now)
npm run --silent build >&2
step "build" "$(elapsed "$t")"
