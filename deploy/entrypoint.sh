#!/bin/sh
# Container entrypoint: run the hub with the mounted configuration (or another verb).
set -eu
CONFIG="${HUBAGENT_CONFIG:-/config/hubagent.yaml}"
if [ "$#" -gt 0 ]; then
    exec hubagent "$@"
fi
if [ ! -f "$CONFIG" ]; then
    echo "hubagent: no configuration at $CONFIG; mount ./deploy at /config (see docker-compose.yml)" >&2
    exit 2
fi
exec hubagent run -c "$CONFIG"
