#!/usr/bin/env bash
# The main job, end to end on this machine: install what the lab needs, boot
# the three lab hosts of inventory/lab-small.yml, converge playbooks/site.ts on
# them, and say where to look. Run as root: `npm ci && npm run demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
inventory=${1:-inventory/lab-small.yml}

bash scripts/install-deps.sh
npm run --silent lab -- up -i "$inventory"
npx zx playbooks/site.ts -i "$inventory" --json reports/site.json
npm run --silent lab -- status -i "$inventory"
npx tsx scripts/where-to-look.ts -i "$inventory"
