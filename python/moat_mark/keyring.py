"""Keyrings: map the key id the gateway sends to the key the engine watermarks with.

The file format is the Rust crate's (``moat mark keygen`` / ``moat mark derive`` write it)::

    {"version": 1,
     "keys": [{"id": "<16 hex>", "key": "<64 hex>", "scope": "campaign:x"}]}

``scope`` may be omitted (it defaults to ``""``, as for a master secret); unknown fields,
duplicate JSON fields, wrong types, malformed hex and ids that do not match their key are
rejected with a :class:`KeyringError` naming the file and the entry. An id listed twice keeps
its last entry, as in the Rust crate.

The gateway sends the key id, never the key, in the ``x-moat-watermark-key`` request header
(:data:`HEADER`); :meth:`Keyring.for_headers` resolves it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from .scheme import key_id, parse_key_hex, parse_key_id

__all__ = ["HEADER", "KeyEntry", "Keyring", "KeyringError", "UnknownKeyError", "load_keyring"]

#: The request header that carries the key id from the gateway to the inference engine.
HEADER = "x-moat-watermark-key"

_TOP_FIELDS = ("version", "keys")
_ENTRY_FIELDS = ("id", "key", "scope")


class KeyringError(ValueError):
    """A keyring file that does not parse or holds a bad entry."""


class UnknownKeyError(KeyError):
    """A well-formed key id that the keyring does not hold."""


@dataclass(frozen=True)
class KeyEntry:
    """One key of a keyring. Its ``repr`` never shows the key."""

    id: str
    key: bytes = field(repr=False)
    scope: str = ""


def _no_duplicate_fields(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate field {name!r}")
        out[name] = value
    return out


class Keyring:
    """Keys by id, in file order."""

    def __init__(self, entries: Optional[List[KeyEntry]] = None):
        self._by_id: Dict[str, KeyEntry] = {}
        for entry in entries or []:
            self.insert(entry)

    def insert(self, entry: KeyEntry) -> None:
        """Adds an entry; one with the same id is replaced."""
        self._by_id.pop(entry.id, None)
        self._by_id[entry.id] = entry

    @classmethod
    def from_json(cls, text: str, source: str = "<keyring>") -> "Keyring":
        """Parses the keyring JSON format; ``source`` names the file in error messages."""

        def fail(where: str, why: str) -> KeyringError:
            return KeyringError(f"{source}: {where}: {why}" if where else f"{source}: {why}")

        try:
            doc = json.loads(text, object_pairs_hook=_no_duplicate_fields)
        except ValueError as e:
            raise fail("", f"not valid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise fail("", f"expected a JSON object, found {type(doc).__name__}")
        unknown = sorted(set(doc) - set(_TOP_FIELDS))
        if unknown:
            raise fail("", f"unknown field {unknown[0]!r} (expected version and keys)")
        for name in _TOP_FIELDS:
            if name not in doc:
                raise fail("", f"missing field {name!r}")
        version = doc["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise fail("version", f"expected an integer, found {version!r}")
        if version != 1:
            raise fail("", f"unsupported version {version} (expected 1)")
        keys = doc["keys"]
        if not isinstance(keys, list):
            raise fail("keys", f"expected a list, found {type(keys).__name__}")

        ring = cls()
        for i, raw in enumerate(keys):
            where = f"keys[{i}]"
            if not isinstance(raw, dict):
                raise fail(where, f"expected an object, found {type(raw).__name__}")
            unknown = sorted(set(raw) - set(_ENTRY_FIELDS))
            if unknown:
                raise fail(where, f"unknown field {unknown[0]!r} (expected id, key, scope)")
            for name in ("id", "key"):
                if name not in raw:
                    raise fail(where, f"missing field {name!r}")
            for name in _ENTRY_FIELDS:
                if name in raw and not isinstance(raw[name], str):
                    raise fail(f"{where}.{name}", f"expected a string, found {raw[name]!r}")
            try:
                key = parse_key_hex(raw["key"])
            except ValueError as e:
                raise fail(f"{where}.key", str(e)) from None
            try:
                kid = parse_key_id(raw["id"])
            except ValueError as e:
                raise fail(f"{where}.id", str(e)) from None
            expected = key_id(key)
            if kid != expected:
                raise fail(where, f"id {kid} does not match its key (expected {expected})")
            ring.insert(KeyEntry(id=kid, key=key, scope=raw.get("scope", "")))
        return ring

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Keyring":
        """Reads a keyring file (UTF-8 JSON). Raises :class:`KeyringError` (or ``OSError``)."""
        name = os.fspath(path)
        try:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError as e:
            raise KeyringError(f"{name}: not UTF-8: {e}") from None
        return cls.from_json(text, source=name)

    def to_json(self) -> str:
        """The keyring JSON format (contains key material: for key files only)."""
        keys = [{"id": e.id, "key": e.key.hex(), "scope": e.scope} for e in self]
        return json.dumps({"version": 1, "keys": keys}, indent=2)

    def get(self, kid: str) -> Optional[KeyEntry]:
        """The entry with this id (any case, whitespace ignored), or ``None``.
        Raises ``ValueError`` for a malformed id."""
        return self._by_id.get(parse_key_id(kid))

    def __getitem__(self, kid: str) -> KeyEntry:
        entry = self.get(kid)
        if entry is None:
            raise UnknownKeyError(f"no key with id {parse_key_id(kid)} in the keyring")
        return entry

    def by_scope(self, scope: str) -> Optional[KeyEntry]:
        """The first entry derived for ``scope``, or ``None``."""
        return next((e for e in self if e.scope == scope), None)

    def for_headers(self, headers: Mapping[str, str]) -> Optional[KeyEntry]:
        """The entry named by the ``x-moat-watermark-key`` header (name matched without regard
        to case), or ``None`` when the request carries no such header (serve it unwatermarked).

        Raises ``ValueError`` for a malformed id and :class:`UnknownKeyError` for an id the
        keyring does not hold: the engine should refuse such a request rather than serve it
        unwatermarked.
        """
        value = next((v for k, v in headers.items() if k.lower() == HEADER), None)
        if value is None:
            return None
        return self[value]

    def __contains__(self, kid: object) -> bool:
        try:
            return isinstance(kid, str) and self.get(kid) is not None
        except ValueError:
            return False

    def __iter__(self) -> Iterator[KeyEntry]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"Keyring({[e.id for e in self]})"


def load_keyring(path: Union[str, "os.PathLike[str]"]) -> Keyring:
    """Reads a keyring file: see :meth:`Keyring.load`."""
    return Keyring.load(path)
