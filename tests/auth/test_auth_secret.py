"""The instance key: environment or file, and per-purpose subkeys."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from runnel.auth.secret import (
    KEY_FILE,
    PURPOSE_API_KEYS,
    PURPOSE_SECRETS,
    InvalidSecretKey,
    derive_key,
    load_or_create_instance_key,
)


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_or_create_instance_key(data_dir, None)
    path = data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text().strip()
    assert len(text) == 64
    int(text, 16)
    assert key == text.encode()
    assert load_or_create_instance_key(data_dir, None) == key
    assert load_or_create_instance_key(data_dir, "   ") == key  # blank means unset
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]  # no temporary left


def test_the_environment_wins(tmp_path: Path) -> None:
    value = "e" * 40
    assert load_or_create_instance_key(tmp_path, value) == value.encode()
    assert load_or_create_instance_key(tmp_path, f"  {value}\n") == value.encode()
    assert not (tmp_path / KEY_FILE).exists()


def test_the_file_content_works_as_the_environment_value(tmp_path: Path) -> None:
    key = load_or_create_instance_key(tmp_path / "a", None)
    copied = (tmp_path / "a" / KEY_FILE).read_text()
    assert load_or_create_instance_key(tmp_path / "b", copied) == key


def test_short_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSecretKey, match="at least 32 characters"):
        load_or_create_instance_key(tmp_path, "short")
    (tmp_path / KEY_FILE).write_text("")
    os.chmod(tmp_path / KEY_FILE, 0o600)
    with pytest.raises(InvalidSecretKey, match=KEY_FILE):
        load_or_create_instance_key(tmp_path, None)


def test_a_file_readable_by_others_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / KEY_FILE).write_text("f" * 64)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with caplog.at_level(logging.WARNING, logger="runnel.auth.secret"):
        assert load_or_create_instance_key(tmp_path, None) == b"f" * 64
    assert "chmod 600" in caplog.text


def test_derived_keys_are_stable_and_differ_by_purpose() -> None:
    master = b"m" * 64
    api = derive_key(master, PURPOSE_API_KEYS)
    assert len(api) == 32
    assert derive_key(master, PURPOSE_API_KEYS) == api
    assert derive_key(master, PURPOSE_SECRETS) != api
    assert derive_key(b"n" * 64, PURPOSE_API_KEYS) != api
    assert len(derive_key(master, "other", length=64)) == 64
    with pytest.raises(InvalidSecretKey):
        derive_key(b"", PURPOSE_API_KEYS)
    with pytest.raises(ValueError, match="purpose"):
        derive_key(master, "")
