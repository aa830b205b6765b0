"""Store bounds and hygiene on real SQLite files, and against a real broker.

History is bounded per entity (rows and bytes), one huge state is stored as a stub, states
and history are sealed with a store key (a sensor that reads request texts must not put
them on disk in clear), files are 0600 and a new folder 0700, and audit entries made while
the disk refuses writes are written when it takes them again.
"""

from __future__ import annotations

import json
import logging
import stat
import time
from pathlib import Path

import pytest
from conftest import make_broker_env
from faultkit import hub_config, wait_for, write_home

from hubagent.app import Hub
from hubagent.mqtt.client import MqttClient
from hubagent.store.db import AuditEntry, Store

PIN_TEXT = "unlock the front door, my PIN is 4711-9923"


def raw_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def history_rows(store: Store, entity_id: str) -> tuple[int, int]:
    store.flush()
    return store.query(
        "SELECT count(*), coalesce(sum(length(state)), 0) FROM history WHERE entity_id = ?",
        (entity_id,),
    )[0]


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "hub.db"
    with Store(path) as store:
        store.save_state("light.a", {"state": "on"})
        store.add_history("light.a", {"state": "on"})
        store.flush()
        files = [path, path.with_name("hub.db-wal"), path.with_name("hub.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(path.parent) == 0o700
    # An existing store with loose modes is tightened at open.
    for f in (path, path.with_name("hub.db-wal")):
        if f.exists():
            f.chmod(0o644)
    with Store(path):
        assert mode(path) == 0o600


def test_history_is_bounded_per_entity_in_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "hub.db", history_max_rows=100) as store:
        for i in range(1000):
            store.add_history("sensor.chatty", {"state": i}, ts=1000.0 + i)
            if i % 150 == 0:
                store.flush()
        for i in range(10):
            store.add_history("sensor.quiet", {"state": i}, ts=1000.0 + i)
        rows, _ = history_rows(store, "sensor.chatty")
        assert 90 <= rows <= 100
        assert history_rows(store, "sensor.quiet")[0] == 10
        newest = store.history("sensor.chatty", limit=1000)
        assert newest[-1][1] == {"state": 999}  # the oldest went, the newest stayed


def test_history_is_bounded_per_entity_in_bytes(tmp_path: Path) -> None:
    with Store(tmp_path / "hub.db", history_max_bytes=20_000, max_state_bytes=4096) as store:
        for i in range(200):
            store.add_history("sensor.big", {"state": f"{i:04d}" + "x" * 1000})
        _, nbytes = history_rows(store, "sensor.big")
        assert 10_000 < nbytes <= 20_000


def test_one_huge_state_is_stored_as_a_stub(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    path = tmp_path / "hub.db"
    huge = {"state": "A" * 20_000_000, "unit": "W", "power": 5}
    size = len(json.dumps(huge, separators=(",", ":")))
    with Store(path, max_state_bytes=16 * 1024) as store:
        for _ in range(5):
            store.save_state("sensor.blowup", huge)
            store.add_history("sensor.blowup", huge)
        store.flush()
        saved = store.load_states()["sensor.blowup"]["state"]
        assert saved == {"unit": "W", "power": 5, "oversize_bytes": size}
        assert store.history("sensor.blowup")[0][1]["oversize_bytes"] == size
    assert path.stat().st_size < 1_000_000  # five 20 MB states made the store +96 MB before
    assert len([r for r in caplog.records if "sensor.blowup sent a state" in r.getMessage()]) == 1


def test_states_and_history_are_sealed_with_a_key(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    with Store(path, "a store passphrase") as store:
        store.save_state("sensor.everything", {"state": PIN_TEXT})
        store.add_history("sensor.everything", {"state": PIN_TEXT})
        store.flush()
        assert b"4711" not in raw_bytes(path)
    with Store(path, "a store passphrase") as store:
        assert store.load_states()["sensor.everything"]["state"] == {"state": PIN_TEXT}
        assert store.history("sensor.everything")[0][1] == {"state": PIN_TEXT}
    with Store(tmp_path / "plain.db") as store:  # no key: plain, as documented
        store.save_state("sensor.x", {"state": "visible"})
        store.flush()
        assert b"visible" in raw_bytes(tmp_path / "plain.db")


def test_audit_made_while_the_disk_is_full_is_written_later(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    store = Store(path, "audit passphrase", flush_interval_s=0.05)
    try:
        store.audit(AuditEntry("t", "http", "before", None, "executed"))
        pages = store.query("PRAGMA page_count")[0][0]
        store.query(f"PRAGMA max_page_count = {pages}")  # the disk is full: SQLITE_FULL
        for i in range(80):
            store.audit(AuditEntry("t", "http", f"during {i} " + "x" * 300, None, "executed"))
        # The first few still fit in the file's free pages; the rest are held.
        held = store.audit_pending
        assert store.degraded and 50 <= held <= 80
        assert store.audit_entries(limit=1)[0].text.startswith("during 79")
        store.query("PRAGMA max_page_count = 1000000")  # space is back
        wait_for(lambda: store.audit_pending == 0, timeout=5)  # the flusher wrote them
        print(f"\n{held} audit entries held while the disk was full, all written after")
        store.audit(AuditEntry("t", "http", "after", None, "executed"))
    finally:
        store.close()
    with Store(path, "audit passphrase") as again:
        texts = [e.text for e in reversed(again.audit_entries(limit=1000))]
    assert texts[0] == "before" and texts[-1] == "after"
    assert [t.split(" ")[1] for t in texts[1:-1]] == [str(i) for i in range(80)]


def test_held_audit_entries_are_bounded(tmp_path: Path) -> None:
    store = Store(tmp_path / "hub.db", audit_pending_max=10)
    try:
        pages = store.query("PRAGMA page_count")[0][0]
        store.query(f"PRAGMA max_page_count = {pages}")
        for i in range(25):
            store.audit(AuditEntry("t", "http", f"entry {i} " + "x" * 2000, None, "executed"))
        assert store.audit_pending == 10 and 10 <= store.audit_dropped <= 15
    finally:
        store.query("PRAGMA max_page_count = 1000000")
        store.close()


def test_a_sensor_on_every_topic_stores_no_plain_text_and_stays_bounded(tmp_path: Path) -> None:
    """Attack 7 of issue 14, store side: whatever discovery lets through, a sensor reading
    every message (here `#`) cannot put request texts on disk in clear or grow without
    bound. (Discovery may refuse the wildcard config altogether; the bounds hold anyway.)"""
    home = write_home(tmp_path)
    env = make_broker_env(tmp_path / "broker", ["lab_lamp", "front_door", "lab_plug", "evil"])
    db = tmp_path / "hub.db"
    cfg = hub_config(env.mqtt_config(), db, (str(home),), history_max_rows=50)
    hub = Hub(cfg)
    evil = MqttClient(env.mqtt_config("evil"), status_topic=None)
    requester = MqttClient(env.mqtt_config("requester"), status_topic=None)
    try:
        assert hub.start(wait=10)
        evil.start()
        requester.start()
        assert evil.wait_connected(10) and requester.wait_connected(10)
        config = {"name": "Everything", "unique_id": "evil_all", "state_topic": "#"}
        topic = "homeassistant/sensor/evil/all/config"
        assert evil.publish(topic, json.dumps(config).encode(), qos=1, retain=True, timeout=5).ok
        time.sleep(0.5)
        for i in range(200):
            payload = json.dumps({"text": f"{PIN_TEXT} #{i}", "id": str(i)})
            assert requester.publish("hubagent/request", payload, qos=1, timeout=5).ok
        wait_for(lambda: hub.ingest.backlog == 0)
        hub.store.flush()
        assert b"4711" not in raw_bytes(db)
        counts = hub.store.query("SELECT entity_id, count(*) FROM history GROUP BY entity_id")
        print(f"\n'#' sensor: history rows per entity {counts}")
        assert all(n <= 50 for _, n in counts)
        assert mode(db) == 0o600
    finally:
        requester.stop()
        evil.stop()
        hub.stop()
        env.close()
