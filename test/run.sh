#!/usr/bin/env bash
# The project's test command (`npm test`, `.ci/run`):
#   1. npm ci when node_modules is missing or older than package-lock.json
#   2. host setup (podman API service, packages)       test/infra/setup-host.sh   } skipped when
#   3. the local Kafka image                            test/infra/kafka-image.sh  } KAFKA_BROKERS is set
#   4. npm run build, then lint (biome) and the deployment-file checks
#   5. node --test over dist/test/unit/ and dist/test/integration/
# The exit code is the test runner's. Set-up timings are printed before the tests run; every broker
# container that this run's tests leave behind is removed on exit.
# Environment: KAFKA_BROKERS (use that cluster, no containers), SMMU_TEST_TIMEOUT (seconds for the
# whole test step, default 2400), SMMU_TEST_DIRS (test directories under dist/, default "unit integration").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Steps 1-4 are shared with the demo.
# shellcheck source=test/infra/prepare.sh
. test/infra/prepare.sh

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

# Lint and format (biome.json): warnings fail too, so none accumulate unseen.
t=$(now)
npx biome check --error-on-warnings . >&2
step "lint" "$(elapsed "$t")"

# Deployment files: systemd-analyze verify, Kubernetes schemas, dashboard and configs.
t=$(now)
bash test/deploy/validate.sh >&2
step "deploy checks" "$(elapsed "$t")"

# Container images, where this machine can build them (podman, root, no KAFKA_BROKERS). A
# failure here is reported but does not fail the run: it can come from the build sandbox's
# network rather than from the Dockerfile. The images are removed again; the base is kept.
if [ -z "${KAFKA_BROKERS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v podman >/dev/null 2>&1; then
  t=$(now)
  if TAG=ci bash test/deploy/build-images.sh >/tmp/smmu-fleet-build-images.log 2>&1; then
    step "images" "$(elapsed "$t") (built and started: agent, collector, fleet)"
  else
    step "images" "FAILED after $(elapsed "$t"): see /tmp/smmu-fleet-build-images.log"
    tail -n 20 /tmp/smmu-fleet-build-images.log >&2
  fi
  podman rmi -f localhost/smmu-fleet-{agent,collector,fleet}:ci >/dev/null 2>&1 || true
  podman image prune -f >/dev/null 2>&1 || true
fi

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
