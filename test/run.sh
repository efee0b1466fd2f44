#!/usr/bin/env bash
# The project's test command (`npm test`, `.ci/run`):
#   1. npm ci when node_modules is missing or older than package-lock.json
#   2. host setup (podman API service, packages)       test/infra/setup-host.sh   } skipped when
#   3. the local Kafka image                            test/infra/kafka-image.sh  } KAFKA_BROKERS is set
#   4. npm run build
#   5. node --test over dist/test/unit/ and dist/test/integration/
# The exit code is the test runner's. Set-up timings are printed before the tests run; every broker
# container that this run's tests leave behind is removed on exit.
# Environment: KAFKA_BROKERS (use that cluster, no containers), SMMU_TEST_TIMEOUT (seconds for the
# whole test step, default 2400), SMMU_TEST_DIRS (test directories under dist/, default "unit integration").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '[test/run.sh] %s\n' "$*" >&2; }
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
# proto/gen/ is not in git and pbjs does not create its output directory.
mkdir -p proto/gen
npm run --silent build >&2
# Compiled tests whose source is gone would still run: drop them.
if [ -d dist/test ]; then
  while IFS= read -r js; do
    src="${js#dist/}"
    src="${src%.js}.ts"
    if [ ! -f "$src" ]; then
      log "removing stale $js"
      rm -f "$js" "$js.map"
    fi
  done < <(find dist/test -name '*.test.js')
fi
step "build" "$(elapsed "$t")"

# --- 5. tests -------------------------------------------------------------------------------
dirs=()
for d in ${SMMU_TEST_DIRS:-unit integration}; do
  [ -d "dist/test/$d" ] && dirs+=("dist/test/$d/")
done
if [ "${#dirs[@]}" -eq 0 ]; then
  log "no test directories under dist/test"
  exit 1
fi

echo "# set-up timings"
for line in "${timings[@]}"; do echo "#   $line"; done
echo "#   total          $(elapsed "$t_all")"
echo "# running: node --test ${dirs[*]}"

set +e
timeout --kill-after=30 "${SMMU_TEST_TIMEOUT:-2400}" \
  node --test --test-concurrency=1 "${dirs[@]}"
rc=$?
set -e
if [ "$rc" -eq 124 ]; then
  log "tests did not finish within ${SMMU_TEST_TIMEOUT:-2400}s"
fi
exit "$rc"
