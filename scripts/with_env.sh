#!/usr/bin/env bash
# Run a command inside the suite's environment (see scripts/env.sh): scripts/with_env.sh CMD ARGS...
set -eo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$@"
