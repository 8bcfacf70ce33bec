#!/usr/bin/env bash
# `npm test`: the tests that need no lab (unit, engine, role) run two files at a time, one per core;
# then the lab suites (test/lab, test/stack) one at a time, since only one lab may run and their fault
# timings need the machine to themselves. Both phases always run; the exit status is the worse one.
# Arguments go to both tap runs (e.g. --reporter=tap).
set -uo pipefail
cd "$(dirname "$0")/.."
unset NODE_OPTIONS

shopt -s nullglob
quiet=(test/unit/*.test.ts test/engine/*.test.ts test/roles/*.test.ts)
lab=(test/lab/*.test.ts test/stack/*.test.ts)

npx tap --jobs=2 "$@" "${quiet[@]}"
first=$?
npx tap --jobs=1 "$@" "${lab[@]}"
second=$?
exit $((first > second ? first : second))
