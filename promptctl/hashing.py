"""The template hash: a content fingerprint anyone can recompute (recipe in docs/design.md and README).

Pure functions only: no file system, no git.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .errors import NotUtf8

TYPE_CHECKING = False  # typing stays off the CLI start-up path; annotations are strings
if TYPE_CHECKING:
    from typing import Any

_json_string = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept (the C encoder's)

HASH_FORMAT = "promptctl-template/1"
SHORT_LENGTH = 12
# json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str), built once.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


TRAILING_WHITESPACE = " \t\n\r\f\v"  # ASCII only, so the recipe is the same in every language


def normalize_text(data: bytes, where: str = "file") -> str:
    """Decode UTF-8 (dropping a BOM), turn CRLF / CR into LF, trim trailing whitespace, end with one LF.

    Trailing whitespace means the ASCII characters space, tab, LF, CR, FF and VT (not Unicode spaces).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise NotUtf8(f"{where}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.rstrip(TRAILING_WHITESPACE) + "\n"


def canonical_meta(meta: Mapping[str, Any]) -> str:
    """The ``meta`` member of the canonical document, serialised (callers may memoise it per prompt.yaml)."""
    return _CANONICAL_ENCODER.encode(
        {"type": meta.get("type", "text"), "model": meta.get("model") or {}, "inputs": meta.get("inputs") or {}}
    )


def canonical_document(meta: Mapping[str, Any], files: Mapping[str, str], meta_json: str | None = None) -> bytes:
    """The exact bytes that are hashed. ``files`` must already be normalised text.

    Byte for byte ``json.dumps({"format": ..., "meta": ..., "files": ...}, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``, assembled from its sorted members so a memoised ``meta_json`` can be reused.
    """
    if meta_json is None:
        meta_json = canonical_meta(meta)
    members = ",".join(f"{_json_string(name)}:{_json_string(text)}" for name, text in sorted(files.items()))
    return f'{{"files":{{{members}}},"format":{_json_string(HASH_FORMAT)},"meta":{meta_json}}}'.encode()


def template_hash(meta: Mapping[str, Any], files: Mapping[str, str], meta_json: str | None = None) -> str:
    """Full sha256 hex digest of the canonical document."""
    import hashlib  # here, not at the top: commands that only read refs never pay for OpenSSL's start-up

    return hashlib.sha256(canonical_document(meta, files, meta_json)).hexdigest()


def short_hash(full: str) -> str:
    return full[:SHORT_LENGTH]
