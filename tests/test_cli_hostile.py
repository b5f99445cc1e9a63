"""The ``numabind`` command against hostile input (issue 15): a tree whose
names hold terminal escape sequences, numbers past C's range, an output
that cannot be written, Ctrl-C, ``gather`` to standard output or nowhere,
and the exit status of each (README's "Exit status", docs/reliability.md's
bad-input table).

Every case runs the installed command as a real subprocess on a fixture
tree written as the kernel writes it (tests/sysfs_tree.py), then damaged as
a hostile machine would have it.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import resource
import shlex
import signal
import stat
import subprocess
import sys
import tarfile
import termios
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import numabind
from numabind.gather import extract, gather

NUMABIND = [sys.executable, "-m", "numabind"]
BIN = str(Path(sys.executable).parent)

# What a terminal would act on: C0 controls but the newline, DEL, C1 controls.
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")

EVIL_IB = "mlx5_\x1b[31m0"           # colours the terminal red
EVIL_NETDEV = "ibp\x1b]0;pwn\x07"    # sets the terminal's title
EVIL_UUID = "GPU-\x1b[2J0d1c-4a55-8e4c-4f2b6ec6b0aa"   # clears the screen
EVIL_ROOT = "root-\x1b[1m"


def env_with(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "LOCAL_RANK",
                        "LOCAL_WORLD_SIZE", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                        "PMI_LOCAL_RANK")}
    env.update(extra or {})
    return env


def run(args, root=None, extra=None, **kw) -> subprocess.CompletedProcess:
    env = env_with(extra)
    if root is not None:
        env["NUMABIND_FSROOT"] = str(root)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([*NUMABIND, *args], env=env, timeout=120, **kw)


def no_traceback(p) -> None:
    assert "Traceback" not in p.stderr, p.stderr
    assert "Exception ignored" not in p.stderr, p.stderr


def one_error_line(p) -> str:
    no_traceback(p)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


# --------------------------------------------------------------------------
# a tree whose names hold escape sequences
# --------------------------------------------------------------------------

def _rename_class_entry(root: Path, klass: str, old: str, new: str) -> None:
    """Renames sys/class/<klass>/<old> and the device directory it links to,
    as if the kernel had named it <new>."""
    link = root / "sys/class" / klass / old
    target = Path(os.readlink(link))
    (link.parent / target).rename(link.parent / target.parent / new)
    link.unlink()
    os.symlink(target.parent / new, link.parent / new)


@pytest.fixture(scope="module")
def evil_root(tree) -> Path:
    """dgx-h100 with mlx5_0 named EVIL_IB, its netdev EVIL_NETDEV, GPU 0's
    UUID EVIL_UUID, under a root directory whose own name holds an escape."""
    root = tree.private("dgx-h100")
    _rename_class_entry(root, "infiniband", "mlx5_0", EVIL_IB)
    _rename_class_entry(root, "net", "ibp24s0", EVIL_NETDEV)
    for ndev in (root / "sys/class/infiniband" / EVIL_IB / "ports").glob("*/gid_attrs/ndevs/*"):
        if ndev.read_text().strip() == "ibp24s0":
            ndev.write_text(EVIL_NETDEV + "\n")
    gpu0 = numabind.topology(root).gpus[0].pci_address
    (root / "numabind").mkdir(exist_ok=True)
    (root / "numabind/gpu-uuids").write_text(f"{gpu0} {EVIL_UUID}\n")
    evil = root.with_name(root.name + EVIL_ROOT)
    root.rename(evil)
    # the tree really reads as hostile: else every check below proves nothing
    topo = numabind.topology(evil)
    assert EVIL_IB in [n.name for n in topo.nics]
    assert EVIL_NETDEV in [n.netdev for n in topo.nics]
    assert topo.gpus[0].uuid == EVIL_UUID and EVIL_ROOT in topo.fsroot
    return evil


def escaped(s: str) -> str:
    return s.encode("unicode_escape").decode()   # "\x1b" -> "\\x1b", as numabind shows it


def test_show_escapes_a_trees_names(evil_root):
    p = run(["show"], evil_root)
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    assert not RAW_CONTROL.search(p.stdout), repr(p.stdout)
    lines = p.stdout.splitlines()
    assert lines[0].endswith(escaped(os.path.realpath(evil_root))), lines[0]
    assert any(line.split()[:2] == [escaped(EVIL_IB), "0000:18:00.0"] and escaped(EVIL_NETDEV) in line.split()
               for line in lines), p.stdout
    header = next(line for line in lines if line.rstrip().endswith("NUMA Affinity"))
    assert header.split()[0] == escaped(EVIL_IB)
    assert any(line.startswith("GPU0: ") and line.endswith(f"  {escaped(EVIL_UUID)}") for line in lines), p.stdout


def test_show_json_keeps_the_names_escaped_by_json(evil_root):
    p = run(["show", "--json"], evil_root)
    assert p.returncode == 0, p.stderr
    assert not RAW_CONTROL.search(p.stdout), "JSON printed a raw control character"
    d = json.loads(p.stdout)
    assert EVIL_IB in [n["name"] for n in d["nics"]]          # escaped in the text, exact once parsed
    assert EVIL_NETDEV in [n["netdev"] for n in d["nics"]]
    assert d["gpus"][0]["uuid"] == EVIL_UUID


@pytest.mark.parametrize("cmd", [["show", "--svg", "-"], ["plan", "--svg", "-"]], ids=["show", "plan"])
def test_svg_escapes_a_trees_names(evil_root, cmd):
    p = run(cmd, evil_root)
    assert p.returncode == 0, p.stderr
    assert not RAW_CONTROL.search(p.stdout), "the SVG holds a raw control character (not XML 1.0 either)"
    svg = ET.fromstring(p.stdout)
    texts = " ".join(t for e in svg.iter() for t in (e.text or "", *e.attrib.values()))
    assert escaped(EVIL_IB) in texts


def test_plan_escapes_a_trees_names(evil_root):
    p = run(["plan"], evil_root)
    assert p.returncode == 0, p.stderr
    assert not RAW_CONTROL.search(p.stdout), repr(p.stdout)
    rank0 = next(line.split() for line in p.stdout.splitlines() if line.split()[:1] == ["0"])
    assert f"{escaped(EVIL_IB)}:1" in rank0, rank0


def test_env_lines_are_quoted_and_evaluate_to_the_exact_names(evil_root):
    p = run(["env", "--local-rank", "0"], evil_root)
    assert p.returncode == 0, p.stderr
    assert not RAW_CONTROL.search(p.stdout), repr(p.stdout)
    want = numabind.pin_rank(0, dry_run=True, topology=numabind.topology(evil_root)).env
    assert any(EVIL_IB in v for v in want.values()), want      # the hostile name is exported
    names = " ".join(want)
    script = p.stdout + "".join(f'printf "%s\\0" "${n}"\n' for n in want)
    got = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30, env=env_with())
    assert got.returncode == 0, got.stderr
    assert got.stdout.decode().split("\0")[:-1] == list(want.values()), names


def test_error_messages_escape_what_they_quote(tree):
    p = run(["show"], tree("dgx-h100"), {"CUDA_VISIBLE_DEVICES": "\x1b[31m1"})
    assert p.returncode == 1
    line = one_error_line(p)
    assert not RAW_CONTROL.search(p.stderr), repr(p.stderr)
    assert line.startswith("numabind: error: ") and "'\\x1b[31m1'" in line, line


# --------------------------------------------------------------------------
# numbers past C's range
# --------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, limit", [
    ("--local-world-size", "2147483648", "1048576"),
    ("--local-world-size", "1048577", "1048576"),
    ("--reserve-cores", str(2 ** 40), "2147483647"),
    ("--local-rank", str(2 ** 40), "1048575"),
])
@pytest.mark.parametrize("sub", ["plan", "env", "exec"])
def test_numbers_past_c_range_name_the_flag_and_the_limit(tree, tmp_path, sub, flag, value, limit):
    marker = tmp_path / "ran"
    args = [sub, flag, value] + (["--", "touch", str(marker)] if sub == "exec" else [])
    p = run(args, tree("dgx-h100"))
    assert p.returncode == 2, (p.returncode, p.stderr)
    no_traceback(p)
    assert "OverflowError" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert f"argument {flag}: {value} is above {limit}" in last, p.stderr
    assert not marker.exists()


@pytest.mark.parametrize("flag, value", [("--reserve-cores", "-1"), ("--local-world-size", "0"),
                                         ("--local-rank", "-2"), ("--reserve-cores", "x\x1b[31m")])
def test_a_bad_flag_value_names_the_flag(tree, flag, value):
    p = run(["plan", flag, value], tree("dgx-h100"))
    assert p.returncode == 2, (p.returncode, p.stderr)
    no_traceback(p)
    assert not RAW_CONTROL.search(p.stderr), repr(p.stderr)
    assert f"argument {flag}: " in p.stderr and escaped(value) in p.stderr, p.stderr
    assert flag.lstrip("-").replace("-", "_") not in p.stderr      # reserve_cores is the Python name


@pytest.mark.parametrize("extra, says", [
    ({"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1048577"}, "LOCAL_WORLD_SIZE='1048577' is above 1048576"),
    ({"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2147483648"}, "LOCAL_WORLD_SIZE='2147483648' is above 1048576"),
    ({"LOCAL_RANK": "99999999999999999999"}, "LOCAL_RANK='99999999999999999999' is above 1048576"),
])
def test_a_launcher_count_past_the_limit_names_the_limit(tree, extra, says):
    """The C core's hidden cap on launcher counts, now said (docs/launchers.md)."""
    p = run(["env"], tree("dgx-h100"), extra)
    assert p.returncode == 1, (p.returncode, p.stderr)
    line = one_error_line(p)
    assert line == f"numabind: error: {says}, the largest count numabind reads from a launcher", line


@pytest.mark.parametrize("kw, says", [
    ({"local_world_size": 2 ** 31}, "local_world_size 2147483648 is above 1048576"),
    ({"local_world_size": 1048577}, "local_world_size 1048577 is above 1048576"),
    ({"reserve_cores": 2 ** 40}, "reserve_cores 1099511627776 is above 2147483647"),
    ({"gpus": [0, 2 ** 40]}, "gpus[1] 1099511627776 is above 2147483647"),
])
def test_plan_numbers_past_c_range_are_value_errors(tree, kw, says):
    topo = numabind.topology(tree("dgx-h100"))
    with pytest.raises(ValueError) as e:
        numabind.plan(topology=topo, **kw)
    assert not isinstance(e.value, OverflowError)
    assert says in str(e.value)


def test_the_largest_local_world_size_is_accepted_from_python(tree):
    """1048576 itself is no range error: the plan is refused for having more
    ranks than GPUs, as any size above 8 is on this machine."""
    with pytest.raises(numabind.PlacementError, match="1048576 local ranks but 8 visible GPUs"):
        numabind.plan(local_world_size=1 << 20, topology=numabind.topology(tree("dgx-h100")))


# --------------------------------------------------------------------------
# an output that cannot be written; Ctrl-C
# --------------------------------------------------------------------------

needs_dev_full = pytest.mark.skipif(not (os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)),
                                    reason="no /dev/full here")


@needs_dev_full
@pytest.mark.parametrize("args", [["show"], ["show", "--json"], ["plan"], ["env", "--local-rank", "1"]])
def test_output_to_dev_full_is_one_line_and_exit_74(tree, args):
    with open("/dev/full", "w") as full:
        p = run(args, tree("dgx-h100"), stdout=full, capture_output=False, stderr=subprocess.PIPE)
    assert p.returncode == 74, (p.returncode, p.stderr)
    assert one_error_line(p) == "numabind: error: cannot write standard output: No space left on device"


@needs_dev_full
def test_svg_to_dev_full_is_exit_74(tree):
    p = run(["show", "--svg", "/dev/full"], tree("dgx-h100"))
    assert p.returncode == 74, (p.returncode, p.stderr)
    assert one_error_line(p) == "numabind: error: cannot write /dev/full: No space left on device"
    assert p.stdout == ""


def test_sigint_is_one_line_and_exit_130(tree):
    """A real SIGINT, delivered while `numabind show --json` is inside its
    work: its 177 KB of output fill a pipe nobody reads, so it is blocked
    in the write when the signal comes, however slow this machine is."""
    env = env_with({"NUMABIND_FSROOT": str(tree("dgx-h100"))})
    r, w = os.pipe()
    proc = subprocess.Popen([*NUMABIND, "show", "--json"], stdout=w, stderr=subprocess.PIPE, env=env)
    os.close(w)
    try:
        capacity = fcntl.fcntl(r, 1032)                     # F_GETPIPE_SZ
        buf = bytearray(4)
        deadline = time.monotonic() + 60
        while True:                                        # until the pipe is full: the child blocks
            fcntl.ioctl(r, termios.FIONREAD, buf)
            if int.from_bytes(buf, sys.byteorder) >= capacity or proc.poll() is not None:
                break
            assert time.monotonic() < deadline, "the child never filled the pipe"
            time.sleep(0.02)
        assert proc.poll() is None, "the child ended before it was interrupted: the case proves nothing"
        proc.send_signal(signal.SIGINT)
        with os.fdopen(r, "rb") as out:
            r = -1
            out.read()
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=60)
    finally:
        if r >= 0:
            os.close(r)
        if proc.poll() is None:
            proc.kill()
    assert rc == 130, (rc, err)
    assert err == "numabind: interrupted\n", err


def test_interrupt_while_reading_the_topology_is_exit_130(tree):
    """Ctrl-C during start-up, where a real signal cannot be timed: the
    topology read raises KeyboardInterrupt, as Python does for SIGINT."""
    code = ("import sys, numabind, numabind.cli as cli\n"
            "def interrupted(*a, **k):\n    raise KeyboardInterrupt\n"
            "numabind.topology = interrupted\n"
            "sys.exit(cli.main(['show']))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=env_with({"NUMABIND_FSROOT": str(tree("dgx-h100"))}))
    assert p.returncode == 130, (p.returncode, p.stderr)
    assert p.stderr == "numabind: interrupted\n" and p.stdout == ""


# --------------------------------------------------------------------------
# gather
# --------------------------------------------------------------------------

def test_gather_dash_writes_the_archive_to_stdout(tree, tmp_path):
    root = tree("dgx-h100")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    p = run(["gather", "-"], root, text=False, cwd=cwd)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert not (cwd / "-").exists(), "wrote a file named -"
    assert err.startswith("wrote the archive to standard output: ") and "Traceback" not in err, err
    archive = tmp_path / "from-stdout.tar.gz"
    archive.write_bytes(p.stdout)
    with tarfile.open(archive, "r:gz") as tar:
        assert "sys/devices/system/cpu/online" in tar.getnames()
    dest = tree.scratch("replay-stdout")
    extract(archive, dest)
    got, want = numabind.topology(dest).to_dict(), numabind.topology(root).to_dict()
    got.pop("fsroot"), want.pop("fsroot")
    assert got == want


def test_gather_dash_to_a_terminal_is_refused(tree, tmp_path):
    primary, secondary = os.openpty()
    try:
        p = run(["gather", "-"], tree("dgx-h100"), stdout=secondary, capture_output=False,
                stderr=subprocess.PIPE, cwd=tmp_path)
    finally:
        os.close(secondary)
        os.close(primary)
    assert p.returncode == 2
    assert "standard output is a terminal" in one_error_line(p)
    assert list(tmp_path.iterdir()) == [], "wrote a file"


def test_gather_empty_name_is_a_usage_error(tree, tmp_path):
    p = run(["gather", ""], tree("dgx-h100"), cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    line = one_error_line(p)
    assert line.startswith("numabind: error: gather: the archive's name is empty"), line
    assert p.stdout == "" and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="path is empty"):
        gather("")


def _small_file_limit() -> None:
    # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_gather_failed_write_removes_the_partial_archive(tree, tmp_path):
    out = tmp_path / "cut.tar.gz"
    p = run(["gather", str(out)], tree("dgx-h100"), preexec_fn=_small_file_limit)
    assert p.returncode == 74, (p.returncode, p.stderr)
    assert one_error_line(p) == f"numabind: error: cannot write {out}: File too large"
    assert not out.exists(), "the partial archive was left behind"


@needs_dev_full
def test_gather_to_dev_full_leaves_the_device(tree):
    p = run(["gather", "/dev/full"], tree("dgx-h100"))
    assert p.returncode == 74, (p.returncode, p.stderr)
    assert one_error_line(p) == "numabind: error: cannot write /dev/full: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_gather_hint_is_shell_quoted_and_replays(tree, tmp_path):
    out = tmp_path / "it's a $HOME;archive.tar.gz"
    p = run(["gather", str(out)], tree("dgx-h100"))
    assert p.returncode == 0, p.stderr
    hint = p.stdout.split("replay with: ", 1)[1].strip()
    assert f"tar xzf {shlex.quote(str(out))} -C T" in hint, hint
    replay = tmp_path / "replay"
    replay.mkdir()
    env = env_with({"PATH": BIN + os.pathsep + os.environ.get("PATH", "")})
    shown = subprocess.run(["bash", "-c", hint], cwd=replay, capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "NUMA Affinity" in shown.stdout and "topology of " in shown.stdout


# --------------------------------------------------------------------------
# error text and exit status
# --------------------------------------------------------------------------

def test_errors_drop_errno_and_call_but_the_exception_keeps_them(tree, monkeypatch):
    root = tree("dgx-h100")
    p = run(["show"], root, {"CUDA_VISIBLE_DEVICES": "0,9"})
    assert p.returncode == 1
    line = one_error_line(p)
    assert "[Errno" not in line and "from nmb_" not in line, line
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,9")
    with pytest.raises(numabind.EnvironmentValueError) as e:
        numabind.topology(root)
    assert line == f"numabind: error: {e.value.message}"
    assert "'9'" in e.value.message
    assert str(e.value).startswith("[Errno 22] ") and "from nmb_topology_create" in str(e.value)
    assert e.value.errno == 22 and e.value.call == "nmb_topology_create"


@pytest.mark.parametrize("sub", [["env"], ["exec", "--", "true"]])
def test_no_launcher_variable_suggests_local_rank(tree, sub):
    p = run(sub, tree("dgx-h100"))
    assert p.returncode == 1, (p.returncode, p.stderr)
    line = one_error_line(p)
    assert "LOCAL_RANK" in line and "SLURM_LOCALID" in line and "--local-rank R" in line, line


def test_exec_a_failed_pin_has_its_own_exit_code(tree, tmp_path):
    wanted = set(range(14)) | set(range(112, 126))     # rank 0's CPUs on a DGX H100
    if wanted <= os.sched_getaffinity(0):
        pytest.skip("this machine has every CPU of the DGX H100's rank 0: pinning succeeds")
    marker = tmp_path / "ran"
    p = run(["exec", "--local-rank", "0", "--", "touch", str(marker)], tree("dgx-h100"))
    assert p.returncode == 3, (p.returncode, p.stderr)
    line = one_error_line(p)
    assert line.startswith("numabind exec: error: pinning failed, 'touch' not run: thread "), line
    assert "0-13,112-125" in line
    assert not marker.exists()


@pytest.mark.parametrize("kind, code", [("missing", 127), ("not-executable", 126), ("directory", 126)])
def test_exec_exit_status_as_a_shell_gives_it(tmp_path, kind, code):
    command = tmp_path / "cmd"
    if kind == "not-executable":
        command.write_text("#!/bin/sh\necho ran\n")
        command.chmod(0o644)
    elif kind == "directory":
        command.mkdir()
    p = run(["exec", "--local-rank", "0", "--", str(command)], extra={"CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == code, (p.returncode, p.stderr)
    shell = subprocess.run(["sh", "-c", shlex.quote(str(command))], capture_output=True, timeout=30)
    assert shell.returncode == code, "a shell gives another code: the test is wrong"
    no_traceback(p)       # the line before: "local rank 0: not pinned: ..." (no GPU here)
    assert p.stderr.splitlines()[-1].startswith(f"numabind exec: cannot run '{command}': "), p.stderr
    assert p.stdout == ""
