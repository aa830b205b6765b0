"""Home Assistant bridge: import HA entities into the Registry and run Actions as services.

Talks to HA's REST API through `homeassistant-api` (`Client`): `/api/states` for entities
and states, `/api/template` for floors and areas (the REST API has no registry endpoints),
`/api/services/<domain>/<service>` to act, and (best effort) the WebSocket API for the
entity, area and floor aliases that only HA's registries hold. Entities that live on MQTT keep going through
the MQTT executor; only `source == "homeassistant"` entities come here.

Also the `hubagent ha` verb: `hubagent ha import --url URL [--token T] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass
from http import HTTPMethod
from typing import Any

from hubagent.home.registry import Registry
from hubagent.interfaces.ha_client import (
    AREAS_ONLY_TEMPLATE,
    REGISTRY_TEMPLATE,
    ServiceMappingError,
    action_to_service,
    state_to_entity,
    state_values,
)
from hubagent.types import DOMAIN_VERBS, READ_ONLY_DOMAINS, Action, Area, Entity, Floor

log = logging.getLogger(__name__)
POST = HTTPMethod.POST
# The client logs every WebSocket message at INFO; keep hubagent's log readable.
logging.getLogger("homeassistant_api").setLevel(logging.WARNING)

# Domains imported when `import_domains` is empty: what the hub can control or read, plus
# the voice assistant's todo lists and weather (hubagent.assist).
DEFAULT_DOMAINS: tuple[str, ...] = (*DOMAIN_VERBS, *sorted(READ_ONLY_DOMAINS), "todo", "weather")
# Voice satellites' areas, by device id and by satellite entity id (hubagent.assist).
SATELLITES_TEMPLATE = (
    "{% set ns = namespace(out={}) %}{% for s in states.assist_satellite %}"
    "{% set a = area_name(s.entity_id) %}{% if a %}"
    "{% set ns.out = dict(ns.out, **{s.entity_id: a, device_id(s.entity_id): a}) %}"
    "{% endif %}{% endfor %}{{ ns.out | tojson }}"
)


class HomeAssistantError(RuntimeError):
    """Home Assistant could not be reached, refused the request or the action has no service."""


@dataclass(frozen=True)
class HomeSnapshot:
    """What one import read from Home Assistant."""

    floors: list[Floor]
    areas: list[Area]
    entities: list[Entity]


def _setting(cfg: Any, name: str, default: Any) -> Any:
    # Read defensively: the HomeAssistantConfig dataclass may not exist in config.py yet.
    value = getattr(cfg, name, default) if cfg is not None else default
    return default if value is None else value


class HomeAssistantBridge:
    """`import_entities()` fills the registry; `execute(action)` calls the HA service."""

    def __init__(self, cfg: Any, registry: Registry) -> None:
        url = str(_setting(cfg, "url", "")).rstrip("/")
        token = _setting(cfg, "token", "") or os.environ.get("HUBAGENT_HA_TOKEN", "")
        if not url:
            raise HomeAssistantError("no Home Assistant url configured (homeassistant.url)")
        if not token:
            raise HomeAssistantError(
                "no Home Assistant token (homeassistant.token or HUBAGENT_HA_TOKEN)"
            )
        from homeassistant_api import Client  # heavy import only when the bridge is used

        api_url = url if url.endswith("/api") else f"{url}/api"
        timeout = float(_setting(cfg, "timeout_s", 10.0))
        self.registry = registry
        self.url = url
        self.token = token
        self.verify_ssl = bool(_setting(cfg, "verify_ssl", True))
        self.domains = tuple(_setting(cfg, "import_domains", ()) or DEFAULT_DOMAINS)
        self.client = Client(
            api_url,
            token,
            verify_ssl=self.verify_ssl,
            global_request_kwargs={"timeout": timeout},
        )

    # -- reading -----------------------------------------------------------------------
    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one client call; every failure becomes a HomeAssistantError naming `what`."""
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - niquests and homeassistant_api raise many types
            raise HomeAssistantError(f"Home Assistant at {self.url}: {what} failed: {exc}") from exc

    def _layout(self) -> dict[str, Any]:
        """Floors, areas and entity areas via `/api/template` (empty when templates fail)."""
        for template in (REGISTRY_TEMPLATE, AREAS_ONLY_TEMPLATE):
            try:
                text = self._call("template", self.client.get_rendered_template, template)
                data = json.loads(text)
                if isinstance(data, dict):
                    return data
            except (HomeAssistantError, ValueError) as exc:
                log.info("area template not usable (%s); trying a simpler one", exc)
        log.warning("Home Assistant areas unavailable; entities are imported without areas")
        return {}

    @property
    def websocket_url(self) -> str:
        base = "ws" + self.url[4:] if self.url.startswith("http") else self.url
        # Through the Supervisor proxy (http://supervisor/core) the socket is /websocket.
        return f"{base}/websocket" if base.endswith("/core") else f"{base}/api/websocket"

    def _aliases(self, entity_ids: list[str]) -> dict[str, dict[str, list[str]]]:
        """Entity, area and floor aliases from HA's registries (WebSocket API only).

        Best effort: an older core, a proxy without WebSocket or a refused token leaves
        aliases empty (home files can still add them) and the import goes on.
        """
        from homeassistant_api import WebsocketClient
        from niquests import Session

        session = Session()
        session.verify = self.verify_ssl
        found: dict[str, dict[str, list[str]]] = {"entities": {}, "areas": {}, "floors": {}}
        try:
            with WebsocketClient(self.websocket_url, self.token, session=session) as ws:
                msg = ws.send("config/entity_registry/get_entries", entity_ids=entity_ids)
                entries = ws.recv_result(msg).result or {}
                areas = ws.recv_result(ws.send("config/area_registry/list")).result or []
                floors = ws.recv_result(ws.send("config/floor_registry/list")).result or []
        except Exception as exc:  # noqa: BLE001 - aliases are optional
            log.info("Home Assistant aliases unavailable (%s); importing without them", exc)
            return found
        for entity_id, entry in entries.items() if isinstance(entries, dict) else []:
            if isinstance(entry, dict) and entry.get("aliases"):
                found["entities"][entity_id] = [str(a) for a in entry["aliases"]]
        for kind, key, items in (("areas", "area_id", areas), ("floors", "floor_id", floors)):
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and item.get(key) and item.get("aliases"):
                    found[kind][str(item[key])] = [str(a) for a in item["aliases"]]
        return found

    def fetch(self) -> HomeSnapshot:
        """Read entities, areas and floors from Home Assistant (does not touch the registry)."""
        states = self._call("GET /api/states", self.client.request, "states")
        if not isinstance(states, list):
            raise HomeAssistantError(f"Home Assistant at {self.url}: /api/states is not a list")
        layout = self._layout()
        wanted = [
            str(item["entity_id"])
            for item in states
            if isinstance(item, dict)
            and str(item.get("entity_id", "")).split(".")[0] in self.domains
        ]
        aliases = self._aliases(wanted) if wanted else {"entities": {}, "areas": {}, "floors": {}}
        floors = [
            Floor(str(f[0]), str(f[1] or f[0]), tuple(aliases["floors"].get(str(f[0]), ())))
            for f in layout.get("floors") or []
            if isinstance(f, list) and f and f[0]
        ]
        areas = [
            Area(
                str(a[0]),
                str(a[1] or a[0]),
                str(a[2]) if len(a) > 2 and a[2] else None,
                tuple(aliases["areas"].get(str(a[0]), ())),
            )
            for a in layout.get("areas") or []
            if isinstance(a, list) and a and a[0]
        ]
        entity_area = {
            str(e[0]): str(e[1])
            for e in layout.get("entities") or []
            if isinstance(e, list) and len(e) == 2 and e[1]
        }
        entities = []
        for item in states:
            if not isinstance(item, dict) or "." not in str(item.get("entity_id", "")):
                log.warning("skipping malformed Home Assistant state %r", item)
                continue
            if str(item["entity_id"]).split(".", 1)[0] not in self.domains:
                continue
            try:
                entity = state_to_entity(item, entity_area.get(item["entity_id"]))
                entity.aliases = tuple(aliases["entities"].get(entity.entity_id, ()))
                entities.append(entity)
            except (TypeError, ValueError, KeyError) as exc:
                log.warning("skipping Home Assistant entity %s: %s", item.get("entity_id"), exc)
        return HomeSnapshot(floors, areas, entities)

    def import_entities(self) -> int:
        """Add HA's floors, areas and entities to the registry; returns the entity count.

        Entities already known from MQTT discovery or home files are left alone: those are
        controlled directly, and HA would only be a detour.
        """
        snapshot = self.fetch()
        for floor in snapshot.floors:
            if floor.id not in {f.id for f in self.registry.floors}:
                self.registry.add_floor(floor)
        for area in snapshot.areas:
            if self.registry.area(area.id) is None:
                self.registry.add_area(area)
        count = 0
        for entity in snapshot.entities:
            current = self.registry.get(entity.entity_id)
            if current is not None and current.source != "homeassistant":
                continue
            self.registry.upsert(entity)
            count += 1
        log.info("imported %d entities from Home Assistant at %s", count, self.url)
        return count

    def refresh_states(self) -> int:
        """Re-read `/api/states` into the registry's HA entities; returns how many changed.

        `ha_follow.HaFollower` calls it after each (re)connect and while polling.
        """
        states = self._call("GET /api/states", self.client.request, "states")
        items = states if isinstance(states, list) else []
        return sum(self.apply_state(item) for item in items)

    def apply_state(self, item: Any) -> bool:
        """One HA state object (`/api/states` item, `state_changed` new_state) into the
        registry, for entities imported from HA; True when a value changed."""
        if not isinstance(item, dict):
            return False
        entity = self.registry.get(str(item.get("entity_id")))
        if entity is None or entity.source != "homeassistant":
            return False
        state = str(item.get("state"))
        attributes = item.get("attributes")
        values = state_values(
            entity.domain, state, attributes if isinstance(attributes, dict) else {}
        )
        changed = bool(self.registry.update_state(entity.entity_id, values))
        self.registry.set_available(entity.entity_id, state != "unavailable")
        return changed

    def satellite_areas(self) -> dict[str, str]:
        """Area names of HA's voice satellites, by device id and entity id ({} on failure)."""
        try:
            text = self._call("template", self.client.get_rendered_template, SATELLITES_TEMPLATE)
            data = json.loads(text)
        except (HomeAssistantError, ValueError) as exc:
            log.info("satellite areas not readable: %s", exc)
            return {}
        return (
            {str(k): str(v) for k, v in data.items() if k and v} if isinstance(data, dict) else {}
        )

    # -- acting ------------------------------------------------------------------------
    def call_service(
        self, domain: str, service: str, data: dict[str, Any], return_response: bool = False
    ) -> Any:
        """Call any HA service (todo lists, media search); its response data when asked."""
        path = f"services/{domain}/{service}" + ("?return_response" if return_response else "")
        result = self._call(
            f"{domain}.{service}", self.client.request, path, method=POST, json=data
        )
        if return_response and isinstance(result, dict):
            return result.get("service_response")
        return result

    def execute(self, action: Action) -> None:
        """Call the HA service for `action`; HomeAssistantError with a clear text on failure."""
        try:
            domain, service, data = action_to_service(action)
        except ServiceMappingError as exc:
            raise HomeAssistantError(str(exc)) from exc
        path = f"services/{domain}/{service}"
        changed = self._call(
            f"{domain}.{service}", self.client.request, path, method=POST, json=data
        )
        # HA answers with the states that changed during the call: keep the registry current.
        for item in changed if isinstance(changed, list) else []:
            if isinstance(item, dict) and item.get("entity_id") in self.registry:
                entity_id = str(item["entity_id"])
                values = state_values(
                    entity_id.split(".", 1)[0], str(item.get("state")), item.get("attributes") or {}
                )
                self.registry.update_state(entity_id, values)


# -- `hubagent ha` ---------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["import"], help="import: list what would be imported")
    p.add_argument("--url", help="Home Assistant URL, e.g. http://homeassistant.local:8123")
    p.add_argument("--token", help="long-lived access token (else HUBAGENT_HA_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the entities as JSON")


def main(args: argparse.Namespace) -> int:
    from hubagent.config import load_config

    cfg = load_config(getattr(args, "config", None))
    ha_cfg = getattr(cfg, "homeassistant", None)
    settings = {
        "url": args.url or _setting(ha_cfg, "url", ""),
        "token": args.token or _setting(ha_cfg, "token", ""),
        "verify_ssl": _setting(ha_cfg, "verify_ssl", True),
        "import_domains": _setting(ha_cfg, "import_domains", ()),
    }
    try:
        bridge = HomeAssistantBridge(argparse.Namespace(**settings), Registry())
        snapshot = bridge.fetch()
    except HomeAssistantError as exc:
        print(f"hubagent: {exc}", file=sys.stderr)
        return 2
    if args.json:
        rows = [
            {
                "entity_id": e.entity_id,
                "name": e.name,
                "aliases": list(e.aliases),
                "area": e.area,
                "state": e.state,
            }
            for e in snapshot.entities
        ]
        print(json.dumps({"areas": [a.name for a in snapshot.areas], "entities": rows}, indent=2))
        return 0
    area_names = {a.id: a.name for a in snapshot.areas}
    print(
        f"would import {len(snapshot.entities)} entities, {len(snapshot.areas)} areas, "
        f"{len(snapshot.floors)} floors from {bridge.url}"
    )
    for e in snapshot.entities:
        area = area_names.get(e.area or "", e.area or "-")
        print(f"  {e.entity_id:<40} {e.name:<30} {area:<16} {e.state.get('state')}")
    return 0
