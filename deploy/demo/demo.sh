#!/usr/bin/env bash
# `npm run demo`: prepares the machine like the tests do (packages, podman, the local Kafka
# image, the build), then runs the local fleet demo. Arguments go to the demo (--help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# Help needs nothing prepared: print it at once.
for arg in "$@"; do
  case "$arg" in --help | -h) cat deploy/demo/usage.txt; exit 0 ;; esac
done
# shellcheck source=test/infra/prepare.sh
. test/infra/prepare.sh
exec node dist/deploy/demo/demo.js "$@"
