"""Keyring files and the x-moat-watermark-key header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moat_mark import (
    HEADER,
    KeyEntry,
    Keyring,
    KeyringError,
    UnknownKeyError,
    derive_key,
    key_id,
    load_keyring,
)

MASTER = bytes([9] * 32)
KEY_A = derive_key(MASTER, "campaign:a")
KEY_B = derive_key(MASTER, "campaign:b")


def _doc(**overrides):
    doc = {
        "version": 1,
        "keys": [
            {"id": key_id(KEY_A), "key": KEY_A.hex(), "scope": "campaign:a"},
            {"id": key_id(KEY_B), "key": KEY_B.hex(), "scope": "campaign:b"},
        ],
    }
    doc.update(overrides)
    return doc


def _write(tmp_path: Path, doc) -> Path:
    path = tmp_path / "ring.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_load_and_lookup(tmp_path: Path) -> None:
    ring = load_keyring(_write(tmp_path, _doc()))
    assert len(ring) == 2
    assert [e.scope for e in ring] == ["campaign:a", "campaign:b"]
    assert ring[key_id(KEY_B)].key == KEY_B
    assert ring.get(key_id(KEY_A).upper()).key == KEY_A
    assert ring.by_scope("campaign:b").id == key_id(KEY_B)
    assert ring.by_scope("campaign:z") is None
    assert key_id(KEY_A) in ring and "nonsense" not in ring
    back = Keyring.from_json(ring.to_json())
    assert [(e.id, e.key, e.scope) for e in back] == [(e.id, e.key, e.scope) for e in ring]


def test_scope_optional_and_duplicates_keep_the_last(tmp_path: Path) -> None:
    doc = _doc()
    del doc["keys"][0]["scope"]
    doc["keys"].append({"id": key_id(KEY_A), "key": KEY_A.hex(), "scope": "campaign:a2"})
    ring = load_keyring(_write(tmp_path, doc))
    assert len(ring) == 2
    assert ring[key_id(KEY_A)].scope == "campaign:a2"


def test_headers() -> None:
    ring = Keyring([KeyEntry(key_id(KEY_A), KEY_A, "campaign:a")])
    assert ring.for_headers({"X-Moat-Watermark-Key": key_id(KEY_A).upper()}).key == KEY_A
    assert ring.for_headers({HEADER: " " + key_id(KEY_A) + " "}).key == KEY_A
    assert ring.for_headers({"content-type": "application/json"}) is None
    with pytest.raises(UnknownKeyError):
        ring.for_headers({HEADER: key_id(KEY_B)})
    with pytest.raises(ValueError, match="16 hex"):
        ring.for_headers({HEADER: "not-a-key-id"})


def test_repr_hides_keys() -> None:
    ring = Keyring([KeyEntry(key_id(KEY_A), KEY_A, "campaign:a")])
    shown = repr(ring) + repr(next(iter(ring)))
    assert KEY_A.hex() not in shown and repr(KEY_A) not in shown
    assert key_id(KEY_A) in shown


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d.update(version=2), "unsupported version 2"),
        (lambda d: d.update(version=True), "version: expected an integer"),
        (lambda d: d.pop("keys"), "missing field 'keys'"),
        (lambda d: d.update(extra=1), "unknown field 'extra'"),
        (lambda d: d.update(keys={}), "keys: expected a list"),
        (lambda d: d["keys"].__setitem__(1, "x"), "keys[1]: expected an object"),
        (lambda d: d["keys"][1].pop("key"), "keys[1]: missing field 'key'"),
        (lambda d: d["keys"][1].update(comment="x"), "keys[1]: unknown field 'comment'"),
        (lambda d: d["keys"][1].update(scope=3), "keys[1].scope: expected a string"),
        (
            lambda d: d["keys"][1].update(key="abc"),
            "keys[1].key: expected 64 hex characters, found 3",
        ),
        (
            lambda d: d["keys"][1].update(key="0" * 62 + "zz"),
            "keys[1].key: non-hex character at position 62",
        ),
        (lambda d: d["keys"][1].update(id="xyz"), "keys[1].id: a key id has 16 hex characters"),
        (
            lambda d: d["keys"][1].update(id="0" * 16),
            "keys[1]: id 0000000000000000 does not match its key",
        ),
    ],
)
def test_malformed_files_name_file_and_entry(tmp_path: Path, mutate, message: str) -> None:
    doc = _doc()
    mutate(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(KeyringError) as err:
        load_keyring(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "text,message",
    [
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"version": 1, "version": 1, "keys": []}', "duplicate field 'version'"),
    ],
)
def test_unparseable_files(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(KeyringError, match=message) as err:
        load_keyring(path)
    assert str(path) in str(err.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ring.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(KeyringError, match="not UTF-8"):
        load_keyring(path)
