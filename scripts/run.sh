#!/usr/bin/env bash
# `make run`: the whole system on this machine with demo data, until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$PWD/.venv/bin:$PATH"
# A local run may deliver webhooks to a receiver on this machine; deployments keep the default (refused).
export WEBHOOK_ALLOW_PRIVATE_NETWORKS="${WEBHOOK_ALLOW_PRIVATE_NETWORKS:-true}"

# `make run WORKER_REPLICAS=N` runs N replicas of the matching and notification workers (at most the 6
# partitions of a topic: a replica beyond them gets none). Replica n of a worker answers on its first
# replica's metrics port plus 10 per replica before it (matching 9113, 9123, ...; notification 9114, ...).
replicas="${WORKER_REPLICAS:-1}"
if ! [[ "$replicas" =~ ^[1-6]$ ]]; then
  echo "WORKER_REPLICAS must be a whole number from 1 to 6 (the partitions of a topic), not '$replicas'." >&2
  exit 1
fi
replica_lines=()
replica_ports=()
for ((n = 2; n <= replicas; n++)); do
  for first in matching:9103 notification:9104; do
    service="${first%%:*}"
    port=$(( ${first##*:} + 10 * (n - 1) ))
    replica_lines+=("$service-worker-$n: KAFKA_GROUP_INSTANCE_ID=$service-worker-$n WORKER_METRICS_PORT=$port python -m services.$service.worker")
    replica_ports+=("$port")
  done
done

for port in 9092 9093 8100 8101 8102 8103 8104 9101 9102 9103 9104 "${replica_ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "Port $port is already in use: is another 'make run' still going? Stop it first." >&2
    exit 1
  fi
done

mkdir -p var
werkbrug db upgrade
keys="$(werkbrug demo seed --tenant noord-limburg)"
werkbrug workspace upgrade-db
people="$(werkbrug people seed-demo --tenant noord-limburg)"

cat <<BANNER

Werkbrug is starting (Ctrl-C stops everything).
  workspace     http://127.0.0.1:8100   (sign in as one of the demo people below)
  candidate     http://127.0.0.1:8101   (/openapi.json, /metrics, /readyz)
  vacancy       http://127.0.0.1:8102
  matching      http://127.0.0.1:8103
  notification  http://127.0.0.1:8104
  worker metrics and health (/livez, /readyz) on 9101-9104; Kafka on 127.0.0.1:9092; data under var/
Demo tenant: noord-limburg. Demo keys (also in var/demo-keys.env, for 'source var/demo-keys.env'):
$(sed 's/^/  /' <<<"$keys")
Demo people for the workspace (role, e-mail, password; new passwords every run):
$(sed 's/^/  /' <<<"$people")

BANNER

# The demo candidates and vacancies go in through the services' APIs, so they wait until those answer; the
# trap stops the wait when the run ends before they do.
( source var/demo-keys.env && exec werkbrug demo load --tenant noord-limburg ) &
demo_load=$!

# Ready means events flow: every web process's database answers and every worker's consumer holds its
# partitions. Until then a candidate registered in the walkthrough would wait in Kafka for a group to form.
(
  started=$SECONDS
  for url in http://127.0.0.1:{8100..8104}/readyz http://127.0.0.1:{9101..9104}/readyz \
    "${replica_ports[@]/#/http://127.0.0.1:}"; do
    url="${url%/readyz}/readyz"
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do sleep 0.5; done
  done
  echo "Werkbrug is ready after $((SECONDS - started)) s: every process answers and every worker holds its partitions."
) &
ready_wait=$!
trap 'kill "$demo_load" "$ready_wait" 2>/dev/null || true' EXIT

procfile=Procfile
if ((${#replica_lines[@]})); then
  procfile=var/Procfile.replicas
  { cat Procfile; printf '%s\n' "${replica_lines[@]}"; } >"$procfile"
fi
# The app root stays the repository, wherever the Procfile is.
honcho start -f "$procfile" -d .
