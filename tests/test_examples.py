"""The machines bundled for ``--example``: each archive holds exactly the
tree tests/sysfs_tree.py writes for its description today (so the bundled
machines are the tested ones), unpacks into the cache once, and reads and
plans as that tree does."""
from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

import numabind
import numabind.examples as examples
import sysfs_tree as st

ARCHIVES = Path(examples.__file__).parent / "machines"


def walk(root: Path) -> dict[str, tuple[str, str]]:
    """Every path below root: (kind, content or link target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir", "")
        else:
            out[rel] = ("file", p.read_text(errors="surrogateescape"))
    return out


def test_every_description_is_bundled():
    assert examples.names() == st.MACHINES
    assert [e["name"] for e in examples.describe()] == st.MACHINES


@pytest.mark.parametrize("name", st.MACHINES)
def test_the_archive_is_the_tree_the_writer_makes_now(name, tree, tmp_path):
    with tarfile.open(ARCHIVES / f"{name}.tar.xz") as tar:
        tar.extractall(tmp_path, filter="data")
    assert walk(tmp_path) == walk(tree(name)), \
        f"{name}.tar.xz is stale: run python3 tools/make_examples.py"


@pytest.mark.parametrize("name", ["dgx-h100", "azure-nd96isr-h100-v5"])
def test_an_example_reads_and_plans_as_its_tree(name, tree, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = examples.root(name)
    assert root.startswith(str(tmp_path)) and examples.root(name) == root      # unpacked once
    got, want = numabind.topology(root), numabind.topology(tree(name))
    strip = lambda d: {k: v for k, v in d.items() if k != "fsroot"}          # noqa: E731
    assert strip(got.to_dict()) == strip(want.to_dict())
    assert numabind.plan(topology=got).to_dict() == numabind.plan(topology=want).to_dict()


def test_an_unusable_cache_unpacks_once_into_the_users_temporary_directory(tmp_path, monkeypatch):
    # A file where the cache directory should be: no mkdir gets past it, root's neither.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)     # TMPDIR is read again
    root = examples.root("plain-2cpu-no-gpu")
    private = tmp_path / "tmp" / f"numabind-examples-{os.getuid()}"
    assert root.startswith(str(private)) and Path(root, "sys/devices/system/cpu/online").is_file()
    assert examples.root("plain-2cpu-no-gpu") == root                 # unpacked once, not per call
    assert private.stat().st_mode & 0o777 == 0o700


def test_a_temporary_cache_of_someone_elses_is_not_used(tmp_path, monkeypatch):
    """A numabind-examples-UID that is not a private directory of this user
    (another user made it first, or it is a link) is passed over: each call
    then unpacks a fresh directory of its own."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "tmp" / f"numabind-examples-{os.getuid()}")
    a = examples.root("plain-2cpu-no-gpu")
    assert not a.startswith(str(tmp_path / "elsewhere")) and Path(a, "sys/devices/system/cpu/online").is_file()
    assert not any((tmp_path / "elsewhere").iterdir())


def test_an_unknown_name_lists_the_bundled_ones():
    with pytest.raises(examples.ExampleError, match="no bundled machine 'dgx-a100'; choose from .*dgx-h100"):
        examples.root("dgx-a100")
