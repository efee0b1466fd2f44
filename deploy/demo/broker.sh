#!/usr/bin/env bash
# `npm run broker` / `npm run broker -- stop`: one local Kafka broker on 127.0.0.1:9092 for the
# README's "running the parts separately". Prepares the machine like the demo does (podman, the
# local Kafka image, the build), then starts or removes the broker container.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=test/infra/prepare.sh
. test/infra/prepare.sh
exec node dist/deploy/demo/broker.js "$@"
