#!/bin/sh
# Wait for a CI job's service containers, then run the tests; a failed wait never runs them.
# Works in any CI with a shell: download the static binary once (or use the image), then:
set -eu
initbox wait-for --timeout 2m \
  "postgres://postgres@${PGHOST:-localhost}:5432/postgres" \
  "redis://${REDIS_HOST:-localhost}:6379" \
  -- "$@"
