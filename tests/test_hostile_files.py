"""Files under a root that are not files: a FIFO, a socket or a device where
sysfs has a regular file, a FIFO where it has a directory. The core opens
nothing but regular files and directories; each is a typed error naming the
path and what stands there. A FIFO would block a read forever, so every
case runs in a child process with a timeout: a regression fails, never hangs."""
from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

DGX = "dgx-h100"
TIMEOUT = 60
CHILD = """
import sys, numabind
try:
    numabind.topology(sys.argv[1])
except numabind.TopologyError as e:
    print(type(e).__name__, e.errno, str(e), sep="\\n")
else:
    print("no error")
"""


def read_in_child(root: Path) -> tuple[str, int, str]:
    """``numabind.topology(root)`` in a child: (exception type, errno, text)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True,
                         timeout=TIMEOUT, check=True).stdout.splitlines()
    if out == ["no error"]:
        return "no error", 0, ""
    assert len(out) >= 3, out
    return out[0], int(out[1]), out[2]


def show_in_child(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMABIND_FSROOT=str(root))
    return subprocess.run([sys.executable, "-m", "numabind", "show"], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env)


def replace(path: Path, make) -> None:
    """Removes what the fixture wrote at ``path`` and puts ``make(path)`` there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    make(path)


def make_socket(path: Path) -> None:
    # Bound by its short relative name: AF_UNIX paths stop at 108 bytes.
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path.name)
        s.close()
    finally:
        os.chdir(here)


def make_char_device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))   # what /dev/null is
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD, which this process lacks")


NODE0_CPULIST = "sys/devices/system/node/node0/cpulist"


@pytest.mark.parametrize("make,kind", [(os.mkfifo, "a FIFO"), (make_socket, "a socket"),
                                       (make_char_device, "a character device")],
                         ids=["fifo", "socket", "char-device"])
def test_a_cpulist_that_is_not_a_file_is_refused_naming_it(tree, make, kind):
    root = tree.private(DGX)
    replace(root / NODE0_CPULIST, make)
    name, err, text = read_in_child(root)
    assert (name, err) == ("TopologyError", errno.EINVAL)
    assert f"{root}/{NODE0_CPULIST} is {kind}, not a file" in text
    cli = show_in_child(root)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr
    assert f"{root}/{NODE0_CPULIST} is {kind}, not a file" in cli.stderr


def test_a_fifo_as_a_pci_attribute_is_refused_naming_it(tree):
    root = tree.private(DGX)
    attr = (root / "sys/bus/pci/devices/0000:1b:00.0").resolve() / "numa_node"
    replace(attr, os.mkfifo)
    name, err, text = read_in_child(root)
    assert (name, err) == ("TopologyError", errno.EINVAL)
    assert f"{attr} is a FIFO, not a file" in text


@pytest.mark.parametrize("listed", ["sys/bus/pci/devices", "sys/class/infiniband"])
def test_a_fifo_where_a_directory_is_listed_is_refused_naming_it(tree, listed):
    root = tree.private(DGX)
    replace(root / listed, os.mkfifo)
    name, err, text = read_in_child(root)
    assert (name, err) == ("TopologyError", errno.ENOTDIR)
    assert f"{root}/{listed} is a FIFO, not a directory" in text
    cli = show_in_child(root)
    assert cli.returncode != 0 and f"{root}/{listed} is a FIFO, not a directory" in cli.stderr


def test_a_directory_where_a_file_is_read_is_refused_naming_it(tree):
    root = tree.private(DGX)
    replace(root / NODE0_CPULIST, os.mkdir)
    name, err, text = read_in_child(root)
    assert (name, err) == ("TopologyError", errno.EISDIR)
    assert f"{root}/{NODE0_CPULIST} is a directory, not a file" in text


def test_links_inside_the_root_still_resolve(tree):
    # sysfs is links all the way (bus/pci/devices/*, the node's cpuN): a link to
    # a regular file inside the root is that file.
    root = tree.private(DGX)
    real = root / "sys/devices/system/node/node0/cpulist.real"
    (root / NODE0_CPULIST).rename(real)
    os.symlink("cpulist.real", root / NODE0_CPULIST)
    name, *_ = read_in_child(root)
    assert name == "no error"
