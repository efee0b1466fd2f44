#!/usr/bin/env bash
# `npm run demo`: prepares the machine like the tests do (packages, podman, the local Kafka
# image, the build), then runs the local fleet demo. Arguments go to the demo (--help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=test/infra/prepare.sh
. test/infra/prepare.sh
exec node dist/deploy/demo/demo.js "$@"
