"""Container health check: GET /api/health on the hub's HTTP port (no token needed)."""

import json
import os
import sys
import urllib.request

port = os.environ.get("HUBAGENT_HTTP_PORT", "8124")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as resp:
        health = json.load(resp)
except (OSError, ValueError) as exc:
    print(f"unhealthy: {exc}")
    sys.exit(1)
# Healthy means serving; a lost broker connection shows in the JSON but the hub keeps
# answering and queues commands, so it is not a reason to restart the container.
print(json.dumps(health))
sys.exit(0)
