#!/usr/bin/env bash
# Runs the worker locally under wrangler dev (workerd), with local KV and Durable Object
# storage persisted in .wrangler/state, so jobs and tokens survive a restart.
#
#   PORT=8787                  port to listen on (127.0.0.1)
#   ADMIN_TOKEN=dev-admin-token  operator token (Authorization: Bearer ...)
#   WEBHOOK_SECRET=whsec_...   optional: sign webhooks (Standard Webhooks)
#
# Before starting it prints ready-to-paste curl commands for a first walk through the API.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

PORT="${PORT:-8787}"
ADMIN_TOKEN="${ADMIN_TOKEN:-dev-admin-token}"
BASE="http://127.0.0.1:$PORT"

args=(
  dev
  --ip 127.0.0.1
  --port "$PORT"
  --show-interactive-dev-session=false
  --persist-to .wrangler/state
  --var "ADMIN_TOKEN:$ADMIN_TOKEN"
)
if [[ -n "${WEBHOOK_SECRET:-}" ]]; then
  args+=(--var "WEBHOOK_SECRET:$WEBHOOK_SECRET")
fi

# A newcomer's walk through the API, to paste into another terminal once it is up.
cat <<HELP

=== edge-scheduler on $BASE (operator token: $ADMIN_TOKEN) ===

# 1. Issue an API token for user 12345 (the raw token is shown only once) into \$TOKEN:
TOKEN=\$(curl -s -X POST $BASE/admin/v1/tokens -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"user":"12345"}' | sed -E 's/.*"token":"([^"]+)".*/\1/'); echo "\$TOKEN"

# 2. Configure accounts (at most 5 jobs at once on each):
curl -sw '\\n' -X PUT $BASE/admin/v1/users/12345/kling/accounts/a@x.com -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"maxJobs":5}'
curl -sw '\\n' -X PUT $BASE/admin/v1/users/12345/dreamina/accounts/US:a@x.com -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"maxJobs":5}'

# 3. Register a Kling job and a Dreamina job:
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/kling/jobs -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"id":123456789,"replyUrl":"https://example.com/webhook","replyRef":"reference-id"}'
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/dreamina/jobs -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"submitId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","model":"seedance-2.0"}'

# 4. List the executing jobs with the user's token:
curl -sw '\\n' $BASE/v1/kling/scheduler -H "Authorization: Bearer \$TOKEN"
curl -sw '\\n' $BASE/v1/dreamina/scheduler -H "Authorization: Bearer \$TOKEN"
curl -sw '\\n' $BASE/v1/kling/scheduler/available -H "Authorization: Bearer \$TOKEN"

# 5. Complete the Kling job (its webhook is queued, since it has a replyUrl):
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/kling/jobs/123456789/complete -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"status":"completed","result":{"url":"https://example.com/video.mp4"}}'

# 6. The other providers (MiniMax image jobs take no slot; PixVerse lives under /v2/):
curl -sw '\\n' -X PUT $BASE/admin/v1/users/12345/minimax/accounts/acme-main -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"maxJobs":1}'
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/minimax/jobs -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"videoId":"v-1"}'
curl -sw '\\n' $BASE/v1/minimax/scheduler/available -H "Authorization: Bearer \$TOKEN"

# 7. Wait up to 10 s for a slot (in another terminal, complete v-1 to see it admitted):
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/minimax/jobs -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"videoId":"v-2","waitSeconds":10}'
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/minimax/jobs/v-1/complete -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"status":"completed"}'

# 8. Pause an account for a minute, report progress, see the operator's views:
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/kling/accounts/a@x.com/pause -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"seconds":60,"reason":"logged out"}'
curl -sw '\\n' $BASE/admin/v1/users/12345/kling/accounts -H 'Authorization: Bearer $ADMIN_TOKEN'
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/minimax/jobs/v-2/progress -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"progress":40}'
curl -sw '\\n' $BASE/admin/v1/users/12345/minimax/jobs -H 'Authorization: Bearer $ADMIN_TOKEN'

# 9. Webhooks: the pending ones (example.com does not take them; retries follow the schedule),
#    and a replay of every failed one since a time:
curl -sw '\\n' '$BASE/admin/v1/users/12345/kling/webhooks?status=pending' -H 'Authorization: Bearer $ADMIN_TOKEN'
curl -sw '\\n' -X POST $BASE/admin/v1/users/12345/kling/webhooks/retry -H 'Authorization: Bearer $ADMIN_TOKEN' -H 'Content-Type: application/json' -d '{"since":"2026-01-01T00:00:00Z"}'

# 10. The live page: open $BASE/ in a browser and paste \$TOKEN.

HELP

exec npx wrangler "${args[@]}"
