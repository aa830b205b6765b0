"""`hubagent model fetch|verify|info`: prepare the configured model and describe it
(architecture, file type, quantization per tensor group, digest and provenance)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hubagent.config import Config
from hubagent.understand.modelfiles import (
    MODELS,
    ModelSpec,
    check_gguf,
    print_progress,
    resolve_model,
    sha256_file,
    verify_file,
)


def model_info(path: Path) -> dict[str, object]:
    """Architecture, file type, context length, quantization per tensor group, size, SHA-256."""
    from gguf import GGUFReader
    from gguf.constants import LlamaFileType

    check_gguf(path)
    reader = GGUFReader(str(path), "r")

    def field(key: str) -> object:
        f = reader.fields.get(key)
        if f is None or not f.data:
            return None
        value = f.parts[f.data[0]]
        if f.types and f.types[0].name == "STRING":
            return bytes(value).decode("utf-8", "replace")
        return value.tolist()[0] if hasattr(value, "tolist") else value

    arch = field("general.architecture")
    file_type = field("general.file_type")
    try:
        ftype = f"{LlamaFileType(file_type).name.removeprefix('MOSTLY_')} ({file_type})"
    except (ValueError, TypeError):
        ftype = str(file_type)
    groups: dict[str, dict[str, int]] = {}
    for tensor in reader.tensors:
        # "blk.3.attn_q.weight" -> "attn_q.weight": group the per-layer tensors.
        parts = tensor.name.split(".")
        group = ".".join(parts[2:]) if parts[0] == "blk" else tensor.name
        qtype = tensor.tensor_type.name
        groups.setdefault(group, {}).setdefault(qtype, 0)
        groups[group][qtype] += 1
    return {
        "path": str(path),
        "architecture": arch,
        "name": field("general.name"),
        "file_type": ftype,
        "context_length": field(f"{arch}.context_length"),
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "tensors": len(reader.tensors),
        "quantization": groups,
    }


def _provenance(spec: ModelSpec | None, sha256: str) -> list[str]:
    if spec is None:
        return ["provenance: your own file (llm.model is a path); no pinned digest"]
    pinned = "matches" if sha256 == spec.sha256 else "DOES NOT MATCH"
    lines = [
        f"model: {spec.key} ({spec.size_note})",
        f"shipped as: {spec.package}1..{spec.parts}=={spec.version} (pip extra '{spec.extra}')",
        f"pinned sha256: {spec.sha256} ({pinned})",
        f"upstream: {spec.upstream}",
    ]
    if spec.upstream_sha256:
        same = "byte-identical" if spec.upstream_sha256 == sha256 else "DIFFERENT"
        lines.append(f"upstream sha256: {spec.upstream_sha256} ({same})")
    else:
        lines.append("upstream sha256: not compared with upstream; the pinned digest is the check")
    return lines


def model_command(action: str, cfg: Config, quiet: bool, model: str | None = None) -> int:
    """`hubagent model fetch|verify|info [--model small|large|PATH]`."""
    llm = replace(cfg.llm, model=model) if model else cfg.llm
    name = llm.model.strip()
    path = resolve_model(llm, None if quiet else print_progress)
    spec = MODELS.get(name)
    if action == "fetch":
        if not quiet:
            print(f"model ready: {path}")
        return 0
    if action == "verify":
        if spec is not None:
            verify_file(path, spec.sha256, use_cache=False)
        if not quiet:
            print(f"ok: {path} ({'sha256 ' + spec.sha256 if spec else 'GGUF structure'})")
        return 0
    info = model_info(path)
    if not quiet:
        for key in ("path", "name", "architecture", "file_type", "context_length"):
            print(f"{key}: {info[key]}")
        print(f"size_bytes: {info['size_bytes']}")
        print(f"sha256: {info['sha256']}")
        for line in _provenance(spec, str(info["sha256"])):
            print(line)
        print(f"tensors: {info['tensors']}")
        quant: dict[str, dict[str, int]] = info["quantization"]  # type: ignore[assignment]
        for group in sorted(quant):
            types = ", ".join(f"{t} x{n}" for t, n in sorted(quant[group].items()))
            print(f"  {group}: {types}")
    return 0
