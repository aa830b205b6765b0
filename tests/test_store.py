"""The SQLite store on real files: WAL, round trips, retention, encryption, migration, faults."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hubagent.store import db
from hubagent.store.crypto import StoreKeyError, generate_key
from hubagent.store.db import AuditEntry, Store
from hubagent.store.schema import MIGRATIONS, SCHEMA_VERSION, StoreError, migrate

SECRET_TEXT = "unlock the garden gate for the plumber at noon"
SECRET_CONTEXT = "the plumber named Zebulon"


def raw_bytes(path: Path) -> bytes:
    """Everything SQLite wrote for the database: the main file plus the WAL."""
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def write_secrets(store: Store) -> None:
    store.audit(
        AuditEntry("alice", "http", SECRET_TEXT, {"actions": ["lock.gate"]}, "needs_confirmation")
    )
    store.set_context("conv-1", {"last_entity": "lock.gate", "note": SECRET_CONTEXT})


def test_wal_mode_and_pragmas(tmp_path: Path) -> None:
    with Store(tmp_path / "hub.db") as store:
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
        assert store.query("PRAGMA synchronous")[0][0] == 1  # NORMAL
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION


def test_states_round_trip_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    with Store(path) as store:
        store.save_state("light.kitchen", {"state": "on", "brightness": 80}, True, 1000.0)
        store.save_state("light.kitchen", {"state": "off"}, True, 1001.0)  # latest wins
        store.save_states_many([("lock.front", {"state": "locked"}, False, 1002.0)])
        # Buffered states are visible before the flush.
        assert store.load_states()["light.kitchen"]["state"] == {"state": "off"}
    with Store(path) as store:
        states = store.load_states()
    assert states["light.kitchen"] == {
        "state": {"state": "off"},
        "available": True,
        "last_changed": 1001.0,
    }
    assert states["lock.front"]["available"] is False


def test_write_behind_flushes_in_background(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = Store(path, flush_interval_s=0.05)
    try:
        store.save_state("switch.fan", {"state": "on"})
        deadline = time.monotonic() + 3
        other = sqlite3.connect(path)
        rows: list[tuple[str]] = []
        while time.monotonic() < deadline and not rows:
            rows = other.execute("SELECT entity_id FROM states").fetchall()
            time.sleep(0.02)
        other.close()
        assert rows == [("switch.fan",)]
    finally:
        store.close()


def test_history_pruned_by_retention(tmp_path: Path) -> None:
    now = 1_000_000.0
    with Store(tmp_path / "hub.db", history_days=1.0) as store:
        store.add_history("sensor.temp", {"state": 20}, now - 3 * 86400)
        store.add_history("sensor.temp", {"state": 21}, now - 2 * 86400)
        store.add_history("sensor.temp", {"state": 22}, now - 3600)
        assert len(store.history("sensor.temp")) == 3
        assert store.prune_history(now) == 2
        assert store.history("sensor.temp") == [(now - 3600, {"state": 22})]


def test_audit_and_context_encrypted_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "enc.db"
    key = generate_key()
    with Store(path, key=key) as store:
        assert store.encrypted
        write_secrets(store)
        blob = raw_bytes(path)
        assert SECRET_TEXT.encode() not in blob
        assert SECRET_CONTEXT.encode() not in blob
        assert b"lock.gate" not in blob
    with Store(path, key=key) as store:
        [entry] = store.audit_entries(10)
        assert entry.text == SECRET_TEXT
        assert entry.understood == {"actions": ["lock.gate"]}
        assert entry.requester == "alice" and entry.decision == "needs_confirmation"
        assert store.get_context("conv-1") == {"last_entity": "lock.gate", "note": SECRET_CONTEXT}


def test_plain_text_without_key_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "plain.db"
    with caplog.at_level(logging.WARNING), Store(path) as store:
        assert not store.encrypted
        write_secrets(store)
        blob = raw_bytes(path)
        assert SECRET_TEXT.encode() in blob
        assert SECRET_CONTEXT.encode() in blob
    assert sum("PLAIN TEXT" in r.getMessage() for r in caplog.records) == 1


def test_passphrase_key_and_wrong_key(tmp_path: Path) -> None:
    path = tmp_path / "enc.db"
    with Store(path, key="correct horse battery staple") as store:
        write_secrets(store)
    with pytest.raises(StoreKeyError) as wrong:
        Store(path, key="wrong horse battery staple")
    message = str(wrong.value)
    assert "wrong store encryption key" in message and "\n" not in message
    with pytest.raises(StoreKeyError, match="encrypted; set HUBAGENT_STORE_KEY"):
        Store(path)
    with Store(path, key="correct horse battery staple") as store:
        assert store.audit_entries(1)[0].text == SECRET_TEXT


def test_hex_key_accepted(tmp_path: Path) -> None:
    key = "ab" * 32
    with Store(tmp_path / "hex.db", key=key) as store:
        write_secrets(store)
    with Store(tmp_path / "hex.db", key=key) as store:
        assert store.get_context("conv-1")["note"] == SECRET_CONTEXT


def test_migrates_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)  # what the first release created
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.execute(
        "INSERT INTO states VALUES ('light.old', '{\"state\": \"on\"}', 1, 5.0)",
    )
    conn.close()
    with Store(path) as store:
        assert store.query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
        assert store.load_states()["light.old"]["state"] == {"state": "on"}
        store.set_context("c", {"x": 1})  # table added by migration 2
        assert store.get_context("c") == {"x": 1}
        indexes = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "history_entity_ts" in indexes  # added by migration 3


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this hubagent"):
        Store(path)


def test_read_only_store_degrades(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ro.db"
    with Store(path) as store:
        store.save_states_many([("light.a", {"state": "on"}, True, 1.0)])
    path.chmod(0o444)  # as root this alone does not stop writes, so also open mode=ro
    with caplog.at_level(logging.WARNING):
        store = Store(path, readonly=True)
        store.save_state("light.b", {"state": "off"})
        assert store.flush() is False
        store.audit(AuditEntry("bob", "http", "hello", {}, "executed"))
        store.set_context("c", {"k": "v"})
        for _ in range(5):  # repeated failures log once, not once per write
            store.flush()
    assert store.degraded and "readonly" in store.degraded_reason
    states = store.load_states()
    assert set(states) == {"light.a", "light.b"}  # old rows readable, new kept in memory
    assert store.audit_entries(5)[0].text == "hello"
    assert store.get_context("c") == {"k": "v"}
    store.close()
    degraded_logs = [r for r in caplog.records if "STORE DEGRADED" in r.getMessage()]
    assert len(degraded_logs) == 1
    assert not any("recovered" in r.getMessage() for r in caplog.records)


def test_full_disk_degrades_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "full.db"
    store = Store(path)
    pages = store.query("PRAGMA page_count")[0][0]
    store.query(f"PRAGMA max_page_count = {pages}")  # the disk is full: SQLITE_FULL
    with caplog.at_level(logging.ERROR):
        store.save_states_many(
            [(f"sensor.s{i}", {"state": "x" * 200}, True, 1.0) for i in range(200)]
        )
        store.add_history("sensor.s1", {"state": "y" * 500})
        assert store.flush() is False
    assert store.degraded and "full" in store.degraded_reason
    assert any("STORE DEGRADED" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        store.flush()  # same error again within a minute: silent
        assert not caplog.records
        monkeypatch.setattr(db, "REMINDER_INTERVAL_S", 0.0)
        store.flush()  # ...then a reminder
        assert any("still degraded" in r.getMessage() for r in caplog.records)
    assert len(store.load_states()) == 200  # held in memory
    store.query("PRAGMA max_page_count = 1000000")  # space freed
    assert store.flush() is True
    assert not store.degraded
    store.close()
    with Store(path) as again:
        assert len(again.load_states()) == 200


def test_unopenable_path_falls_back_to_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with Store(blocker / "sub" / "hub.db") as store:  # parent is a file: cannot create
        assert store.degraded
        store.save_state("light.a", {"state": "on"})
        assert "light.a" in store.load_states()


def test_garbage_file_falls_back_to_memory(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database, just junk " * 200)
    with Store(path) as store:
        assert store.degraded and "not a database" in store.degraded_reason
        store.set_context("c", {"a": 1})
        assert store.get_context("c") == {"a": 1}
    assert path.read_bytes().startswith(b"this is not a database")  # left untouched


def test_concurrent_writers(tmp_path: Path) -> None:
    """The MQTT thread and the asyncio loop write at the same time as the flusher."""
    path = tmp_path / "hub.db"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(500):
                store.save_state(f"sensor.t{n}_{i % 50}", {"state": i})
                store.add_history(f"sensor.t{n}", {"state": i})
                if i % 50 == 0:
                    store.audit(AuditEntry(f"user{n}", "http", f"text {i}", {}, "executed"))
                    store.set_context(f"c{n}", {"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with Store(path, flush_interval_s=0.01) as store:
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    with Store(path) as store:
        assert len(store.load_states()) == 200
        assert store.query("SELECT count(*) FROM history")[0][0] == 2000
        assert len(store.audit_entries(100)) == 40
        assert store.get_context("c3") == {"i": 450}


def test_state_write_throughput(tmp_path: Path) -> None:
    """Thousands of state messages per second through the write-behind buffer."""
    n = 20_000
    # Recent timestamps: rows older than the retention limit are pruned by the store itself.
    t0 = time.time() - n
    with Store(tmp_path / "bench.db") as store:
        start = time.perf_counter()
        for i in range(n):
            store.save_state(f"sensor.s{i % 500}", {"state": i}, True, t0 + i)
            store.add_history(f"sensor.s{i % 500}", {"state": i}, t0 + i)
        store.flush()
        elapsed = time.perf_counter() - start
        rate = n / elapsed
        print(f"\nstate+history writes: {rate:,.0f} rows/s ({n} in {elapsed:.2f} s)")
        assert len(store.load_states()) == 500
        assert store.query("SELECT count(*) FROM history")[0][0] == n
    assert rate > 2_000


def test_history_days_zero_keeps_no_history(tmp_path) -> None:
    with Store(tmp_path / "hub.db", history_days=0) as store:
        store.save_state("light.a", {"state": "on"})
        store.add_history("light.a", {"state": "on"})
        assert store.flush()
        assert store.history("light.a") == []
        assert store.load_states()["light.a"]["state"] == {"state": "on"}
