"""``request_drives`` and ``request_directory_list``: only the roots, after resolving."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runnel.services.core_engine import FileBrowser, files
from runnel.settings import Settings
from services.core_engine.engine_setup import Setup

DENIED = "Access denied: the path is outside the browsable folders"


async def listing(setup: Setup, path: str) -> dict[str, Any]:
    return await setup.ask_one(setup.owner, {"type": "request_directory_list", "path": path})


async def test_drives_are_the_configured_roots_made_on_demand(setup: Setup) -> None:
    answer = await setup.ask_one(setup.owner, {"type": "request_drives"})
    root = setup.root.as_posix()
    assert answer == {
        "type": "drives_list_response",
        "drives": [{"name": "root", "type": "drive", "path": root}],
    }
    assert setup.root.is_dir()


async def test_a_root_is_listed_directories_first(setup: Setup) -> None:
    await setup.ask(setup.owner, {"type": "request_drives"})
    (setup.root / "b.txt").write_text("b")
    (setup.root / "A.csv").write_text("a")
    (setup.root / "reports").mkdir()
    (setup.root / "reports" / "q1.pdf").write_text("q1")
    root = setup.root.as_posix()
    answer = await listing(setup, root)
    assert answer == {
        "type": "directory_list_response",
        "path": root,
        "items": [
            {"name": "reports", "type": "directory", "path": f"{root}/reports"},
            {"name": "A.csv", "type": "file", "path": f"{root}/A.csv"},
            {"name": "b.txt", "type": "file", "path": f"{root}/b.txt"},
        ],
    }
    inner = await listing(setup, f"{root}/reports")
    assert inner["items"] == [{"name": "q1.pdf", "type": "file", "path": f"{root}/reports/q1.pdf"}]
    # `..` that stays inside the root is fine.
    back = await listing(setup, f"{root}/reports/..")
    assert back["path"] == root


@pytest.mark.parametrize(
    "where",
    [
        lambda root, outside: f"{root}/..",
        lambda root, outside: f"{root}/reports/../../{outside.name}",
        lambda root, outside: outside.as_posix(),
        lambda root, outside: "/etc",
        lambda root, outside: "/",
        lambda root, outside: f"{root}/link-out",
        lambda root, outside: f"{root}/link-out/secret.txt",
        lambda root, outside: "relative/path",
        lambda root, outside: f"{root}/nul\x00byte",
    ],
)
async def test_paths_outside_the_roots_are_refused(setup: Setup, where: Any) -> None:
    await setup.ask(setup.owner, {"type": "request_drives"})
    outside = setup.root.parent / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (setup.root / "reports").mkdir()
    os.symlink(outside, setup.root / "link-out")
    path = where(setup.root.as_posix(), outside)
    answer = await listing(setup, path)
    assert answer["type"] == "directory_list_response"
    assert "items" not in answer and answer["path"] == path
    assert answer["error"].startswith("Access denied") or answer["error"] == "Not a directory"


async def test_a_symlink_that_stays_inside_is_followed(setup: Setup) -> None:
    await setup.ask(setup.owner, {"type": "request_drives"})
    (setup.root / "real").mkdir()
    (setup.root / "real" / "x.txt").write_text("x")
    os.symlink(setup.root / "real", setup.root / "alias")
    answer = await listing(setup, f"{setup.root.as_posix()}/alias")
    assert answer["path"] == f"{setup.root.as_posix()}/real"
    assert [item["name"] for item in answer["items"]] == ["x.txt"]


async def test_missing_and_file_paths_inside_a_root(setup: Setup) -> None:
    await setup.ask(setup.owner, {"type": "request_drives"})
    (setup.root / "file.txt").write_text("f")
    root = setup.root.as_posix()
    assert (await listing(setup, f"{root}/nothing"))["error"] == "Directory not found"
    assert (await listing(setup, f"{root}/file.txt"))["error"] == "Not a directory"
    # Outside, missing or not is not told.
    assert (await listing(setup, "/no/such/place"))["error"] == DENIED


async def test_long_listings_are_truncated(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_ENTRIES", 5)
    await setup.ask(setup.owner, {"type": "request_drives"})
    for index in range(8):
        (setup.root / f"f{index}.txt").write_text("")
    answer = await listing(setup, setup.root.as_posix())
    assert len(answer["items"]) == 5 and answer["truncated"] is True


async def test_several_roots_and_a_missing_one(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    browser = FileBrowser([one, two])
    assert [d["path"] for d in await browser.drives()] == [one.resolve().as_posix()]
    two.mkdir()
    assert [d["name"] for d in await browser.drives()] == ["one", "two"]


def test_browse_roots_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RUNNEL_BROWSE_ROOTS", f" {tmp_path}/a , {tmp_path}/b,, ")
    settings = Settings(data_dir=tmp_path)
    assert settings.browse_roots == (tmp_path / "a", tmp_path / "b")
    assert settings.platform_config().browse_roots == (tmp_path / "a", tmp_path / "b")
    monkeypatch.delenv("RUNNEL_BROWSE_ROOTS")
    assert Settings(data_dir=tmp_path).platform_config().browse_roots == ()
