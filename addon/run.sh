#!/usr/bin/env bash
# Add-on start: broker credentials from the Supervisor, options from /data/options.json,
# -> /data/hubagent.yaml -> `hubagent run`. No bashio: plain curl against the Supervisor API.
set -euo pipefail

OPTIONS="${HUBAGENT_OPTIONS:-/data/options.json}"
OUT="${HUBAGENT_OUT:-/data/hubagent.yaml}"
SUPERVISOR="${SUPERVISOR_URL:-http://supervisor}"
MQTT_JSON="$(mktemp)"
trap 'rm -f "$MQTT_JSON"' EXIT

if [[ -z "${SUPERVISOR_TOKEN:-}" ]]; then
    echo "[hubagent] SUPERVISOR_TOKEN is not set: this script runs inside the add-on only" >&2
    exit 1
fi

# `services: [mqtt:need]` makes the Supervisor hand out the Mosquitto add-on's account.
if ! curl -fsS --retry 5 --retry-delay 2 \
        -H "Authorization: Bearer ${SUPERVISOR_TOKEN}" \
        "${SUPERVISOR}/services/mqtt" -o "$MQTT_JSON"; then
    echo "[hubagent] no MQTT service from the Supervisor: install and start the Mosquitto broker add-on" >&2
    exit 1
fi

python -m hubagent.interfaces.addon "$OPTIONS" "$MQTT_JSON" "$OUT"
rm -f "$MQTT_JSON"

# The Home Assistant bridge reads HA's REST API through the Supervisor proxy with this token.
export HUBAGENT_HA_TOKEN="${SUPERVISOR_TOKEN}"
exec hubagent run -c "$OUT"
