"""Home Assistant add-on start-up: add-on options + Supervisor MQTT service -> hubagent.yaml.

`addon/run.sh` fetches the Mosquitto add-on's credentials from the Supervisor services API
and calls `python -m hubagent.interfaces.addon OPTIONS.json MQTT.json OUT.yaml`; the
result is a normal hubagent config that `hubagent run -c OUT.yaml` loads.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from hubagent.config import load_config

log = logging.getLogger(__name__)

# Inside the add-on container: the Supervisor proxies Home Assistant's API here.
SUPERVISOR_CORE_URL = "http://supervisor/core"
DATA_DIR = Path("/data")
# addon/Dockerfile runs `hubagent model fetch` into this folder at build time.
MODEL_CACHE = "/opt/hubagent/models"


class AddonConfigError(ValueError):
    """Options or Supervisor data that cannot make a working configuration."""


def _list(options: dict[str, Any], key: str) -> list[str]:
    value = options.get(key) or []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    return [str(v).strip() for v in value if str(v).strip()]


def mqtt_settings(mqtt_service: dict[str, Any]) -> dict[str, Any]:
    """The `mqtt:` section from `GET http://supervisor/services/mqtt` (wrapped or not)."""
    data = mqtt_service.get("data", mqtt_service) if isinstance(mqtt_service, dict) else None
    if not isinstance(data, dict) or not data.get("host"):
        raise AddonConfigError(
            "the Supervisor has no MQTT service: install and start the Mosquitto broker add-on"
        )
    try:
        port = int(data.get("port") or 1883)
    except (TypeError, ValueError):
        raise AddonConfigError(f"MQTT service port is not a number: {data.get('port')!r}") from None
    protocol = str(data.get("protocol") or "5")
    return {
        "host": str(data["host"]),
        "port": port,
        "tls": bool(data.get("ssl", False)),
        "username": data.get("username"),
        "password": data.get("password"),
        # The Mosquitto add-on speaks 3.1.1 and 5; prefer 5 unless told otherwise.
        "protocol": "3.1.1" if protocol.startswith("3") else "5",
        "client_id": "hubagent-addon",
    }


def build_addon_config(
    options: dict[str, Any], mqtt_service: dict[str, Any], data_dir: Path = DATA_DIR
) -> dict[str, Any]:
    """The hubagent.yaml mapping for the add-on's options and the broker it was given."""
    if not isinstance(options, dict):
        raise AddonConfigError("/data/options.json must hold a JSON object")
    model = str(options.get("llm_model") or "default")
    llm: dict[str, Any] = {"backend": "none"}
    if model != "none":
        llm = {"model": model, "cache_dir": MODEL_CACHE}
    if model != "none" and options.get("llm_threads"):
        llm["threads"] = int(options["llm_threads"])
    policy = {
        "allow_entities": _list(options, "allow_entities"),
        "deny_entities": _list(options, "deny_entities"),
        "deny_domains": _list(options, "deny_domains"),
    }
    token = options.get("http_token") or None
    config: dict[str, Any] = {
        "language": str(options.get("language") or "en"),
        "mqtt": mqtt_settings(mqtt_service),
        "llm": llm,
        "policy": {k: v for k, v in policy.items() if v},
        "store": {"path": str(data_dir / "hubagent.db")},
        # The add-on network is private to the Supervisor; HA and the published ports reach
        # the hub through the container's interface, so listen on all of them here.
        "http": {"enabled": True, "host": "0.0.0.0", "port": 8124, "token": token},
        # Wyoming has no authentication. Only peers listed in `wyoming_trusted_peers` (e.g.
        # Home Assistant's 172.30.32.1) may confirm an unlock by voice; the rest need the app.
        "wyoming": {
            "enabled": True,
            "host": "0.0.0.0",
            "port": 10600,
            "trusted_peers": _list(options, "wyoming_trusted_peers"),
        },
    }
    homes = _list(options, "homes")
    if homes:
        config["homes"] = homes
    if options.get("import_homeassistant", True):
        # `homeassistant_api: true` gives the add-on SUPERVISOR_TOKEN for HA's REST API.
        config["homeassistant"] = {"url": SUPERVISOR_CORE_URL, "verify_ssl": True}
    return config


def write_addon_config(
    options: dict[str, Any], mqtt_service: dict[str, Any], out: Path, *, validate: bool = True
) -> Path:
    """Write hubagent.yaml for the add-on (mode 0600: it holds the broker password)."""
    config = build_addon_config(options, mqtt_service, out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    os.replace(tmp, out)
    if validate:
        try:
            load_config(out, env={})
        except ValueError as exc:
            if "homeassistant" not in str(exc):
                raise
            # config.py without a `homeassistant:` section yet: keep the rest working.
            log.warning("this hubagent has no Home Assistant bridge; entity import is off")
            config.pop("homeassistant", None)
            out.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            load_config(out, env={})
    return out


def _read_json(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AddonConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise AddonConfigError(f"{path}: expected a JSON object")
    return data


def main(argv: list[str] | None = None) -> int:
    """`python -m hubagent.interfaces.addon OPTIONS.json MQTT.json OUT.yaml`."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m hubagent.interfaces.addon OPTIONS MQTT OUT", file=sys.stderr)
        return 2
    try:
        out = write_addon_config(_read_json(argv[0]), _read_json(argv[1]), Path(argv[2]))
    except ValueError as exc:
        print(f"hubagent add-on: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
