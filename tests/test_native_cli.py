"""The native ``numabind`` command (csrc/cli, issue 16) against the Python CLI.

Every case runs the installed C binary and ``python -m numabind`` as real
subprocesses with the same arguments and environment, and asserts the same
stdout bytes, stderr text and exit status: on every machine description and
fixture, with launcher and NIC variables set or not, on a tree whose names
hold control characters, on a missing tree, with bad option values (handed
to Python, whose argparse answers), and for ``exec`` on the live host. Then
what only the native command has: it runs with no Python on PATH, it hands
``gather``, ``--svg`` and ``--help`` over, and it is an ELF executable.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import sysfs_tree as st

NATIVE = str(Path(sys.executable).parent / "numabind")
PYTHON = [sys.executable, "-m", "numabind"]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TREES = [*st.MACHINES, *sorted(p.stem for p in FIXTURES.glob("*.json"))]

# Variables that would change what either side reads, dropped from every run.
CLEAN = ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
         "SLURM_LOCALID", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE", "SLURM_STEP_TASKS_PER_NODE",
         "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS",
         "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE", "NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING",
         "NCCL_IB_HCA", "UCX_NET_DEVICES", "EP_NIC_NAME", "NUMABIND_PYTHON", "NUMABIND_RESTORE_SIGINT")


def environ(root: Path | str | None = None, extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    if root is not None:
        env["NUMABIND_FSROOT"] = str(root)
    env.update(extra or {})
    return env


def run(cmd: list[str], args: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], capture_output=True, env=env, timeout=120, **kw)


def same(args: list[str], root=None, extra=None, **kw) -> subprocess.CompletedProcess:
    """Runs both; asserts identical stdout, stderr and status; returns the native run."""
    env = environ(root, extra)
    c = run([NATIVE], args, env, **kw)
    p = run(PYTHON, args, env, **kw)
    assert (c.returncode, c.stderr.decode(errors="replace"), c.stdout) == \
           (p.returncode, p.stderr.decode(errors="replace"), p.stdout), args
    return c


def tree_of(tree, name: str) -> Path:
    path = FIXTURES / f"{name}.json"
    return tree(st.load(path) if path.exists() else name)


def first_nic(root: Path) -> str | None:
    ib = root / "sys/class/infiniband"
    names = sorted(os.listdir(ib)) if ib.is_dir() else []
    return names[0] if names else None


def test_native_is_elf():
    with open(NATIVE, "rb") as f:
        assert f.read(4) == b"\x7fELF", f"{NATIVE} is not the native executable"
    assert os.access(NATIVE, os.X_OK)


def test_native_needs_no_libnuma_so():
    """libnuma is linked in from its archive: a manylinux wheel's command needs
    nothing from the host but glibc (else auditwheel would shim it in Python)."""
    archives = [p for p in ("/usr/lib/x86_64-linux-gnu/libnuma.a", "/usr/lib64/libnuma.a", "/usr/lib/libnuma.a")
                if os.path.exists(p)]
    if not archives or shutil.which("readelf") is None:
        pytest.skip("no libnuma.a to link, or no readelf")
    dynamic = subprocess.run(["readelf", "-d", NATIVE], capture_output=True, text=True, check=True).stdout
    needed = [line for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert needed and not [line for line in needed if "libnuma" in line], needed
    assert "RPATH" not in dynamic and "RUNPATH" not in dynamic


CASES = [
    (["show"], {}),
    (["show", "--json"], {}),
    (["plan"], {}),
    (["plan", "--json"], {}),
    (["plan", "--local-rank", "1"], {}),
    (["plan", "--local-rank", "1", "--json"], {}),
    (["plan", "--local-rank=99"], {}),
    (["plan", "--policy", "node", "--mem", "bind"], {}),
    (["plan", "--policy", "socket", "--mem", "interleave", "--reserve-cores", "1"], {}),
    (["plan", "--local-world-size", "3"], {}),
    (["plan", "--local-world-size", "3", "--json"], {}),
    (["plan"], {"LOCAL_WORLD_SIZE": "2"}),
    (["plan"], {"LOCAL_WORLD_SIZE": "x"}),
    (["env", "--local-rank", "0"], {}),
    (["env"], {"LOCAL_RANK": "1"}),
    (["env"], {}),
    (["env"], {"LOCAL_RANK": "x"}),
    (["env"], {"LOCAL_RANK": "99"}),
    (["env"], {"LOCAL_RANK": "1", "NCCL_IB_HCA": "mlx5_0"}),
    (["env", "--override-env"], {"LOCAL_RANK": "1", "NCCL_IB_HCA": "mlx5_0"}),
    (["plan"], {"NCCL_IB_HCA": "mlx5_0", "UCX_NET_DEVICES": "a'b c"}),
    (["env", "--local-rank", "0"], {"CUDA_VISIBLE_DEVICES": "1,0"}),
    (["plan"], {"CUDA_VISIBLE_DEVICES": "1"}),
    (["plan"], {"CUDA_VISIBLE_DEVICES": ""}),
    (["env"], {"CUDA_VISIBLE_DEVICES": ""}),
    (["show"], {"CUDA_VISIBLE_DEVICES": "0"}),
    (["show"], {"CUDA_VISIBLE_DEVICES": "9"}),
    (["exec", "--local-rank", "99", "--", "true"], {}),
    (["exec"], {}),
    (["exec", "--local-rank", "0"], {}),
    # issue 17: exec --dry-run and the overrides, served natively
    (["exec", "--dry-run", "--local-rank", "0", "--", "python", "-c", "print('a b')"], {}),
    (["exec", "--dry-run", "--", "true"], {"LOCAL_RANK": "1", "NCCL_IB_HCA": "mlx5_0"}),
    (["exec", "--dry-run", "--", "true"], {}),
    (["exec", "--dry-run", "--", "true"], {"CUDA_VISIBLE_DEVICES": ""}),
    (["exec", "--dry-run", "--local-rank", "0", "--cpus", "0", "--", "true"], {}),
    (["plan", "--local-rank", "0", "--cpus", "0", "--json"], {}),
    (["plan", "--local-rank", "0", "--cpus", "8190"], {}),
    (["plan", "--local-rank", "1", "--gpu", "0"], {}),
    (["plan", "--local-rank", "3", "--gpu", "0"], {"LOCAL_WORLD_SIZE": "2"}),
    (["plan", "--local-rank", "6", "--gpu", "1"], {}),            # ranks 4-5 have no GPU of their own
    (["plan", "--local-rank", "0", "--mem-nodes", "0", "--mem", "bind"], {}),
    (["plan", "--local-rank", "0", "--mem-nodes", "0-1"], {}),
    (["plan", "--local-rank", "0", "--mem-nodes", "9", "--mem", "interleave"], {}),
    (["env", "--local-rank", "0", "--nic", "nope0"], {}),
    (["env", "--gpu", "1"], {"LOCAL_RANK": "0"}),
    (["env", "--cpus", "0"], {}),
    (["plan", "--cpus", "0"], {}),
    (["plan", "--local-rank", "0", "--cpus", "0-x"], {}),
    (["show", "--fsroot", ""], {}),
    # usage errors: argparse's own words, through the hand-over
    (["plan", "--local-rank", "x"], {}),
    (["plan", "--reserve-cores", "2147483648"], {}),
    (["env", "--local-world-size", "0"], {}),
    (["plan", "--policy", "nope"], {}),
    (["show", "--bogus"], {}),
    (["plan", "--loc", "1"], {}),
]


# What the native command hands to Python on purpose (argparse's usage
# errors, cli.py's own usage checks); every other case must be served in C.
HANDED_OVER = [
    ["plan", "--local-rank", "x"], ["plan", "--reserve-cores", "2147483648"], ["env", "--local-world-size", "0"],
    ["plan", "--policy", "nope"], ["show", "--bogus"], ["plan", "--loc", "1"], ["show", "--fsroot", ""],
    ["plan", "--cpus", "0"], ["plan", "--local-rank", "0", "--cpus", "0-x"],
    ["plan", "--local-rank", "3", "--gpu", "0"],       # with LOCAL_WORLD_SIZE=2: _make_plan's ValueError
]


@pytest.mark.parametrize("name", TREES)
def test_same_as_python(tree, name, tmp_path):
    root = tree_of(tree, name)
    marker = tmp_path / "python"
    marker.write_text("#!/bin/sh\necho HANDED-OVER\nexit 99\n")
    marker.chmod(0o755)
    for args, extra in CASES:
        same(args, root, extra)
        # served natively, unless listed: a Python that only says it was called must not be reached
        c = run([NATIVE], args, environ(root, {**extra, "NUMABIND_PYTHON": str(marker)}))
        handed = c.returncode == 99 and c.stdout == b"HANDED-OVER\n"
        assert handed == (args in HANDED_OVER), (args, extra, "handed over" if handed else "served natively")


@pytest.mark.parametrize("name", TREES)
def test_nic_variables_from_the_environment(tree, name):
    root = tree_of(tree, name)
    nic = first_nic(root)
    if nic is None:
        pytest.skip("no RDMA NIC")
    for extra in ({"NVSHMEM_HCA_LIST": f"{nic}:1"}, {"NVSHMEM_HCA_LIST": nic, "NCCL_IB_HCA": nic},
                  {"NCCL_IB_HCA": f"={nic}:1"}, {"NVSHMEM_HCA_LIST": "nope_9"}):
        for args in (["env"], ["env", "--override-env"], ["plan"], ["plan", "--json"]):
            same(args, root, {"LOCAL_RANK": "1", **extra})


def test_missing_tree(tmp_path):
    for args in (["show"], ["show", "--json"], ["plan"], ["env", "--local-rank", "0"],
                 ["exec", "--local-rank", "0", "--", "true"]):
        p = same(args, tmp_path / "absent")
        assert p.returncode == 1 and p.stderr.startswith(b"numabind: error: ")


def _rename_nic(root: Path, old: str, new: str) -> None:
    link = root / "sys/class/infiniband" / old
    target = Path(os.readlink(link))
    (link.parent / target).rename(link.parent / target.parent / new)
    link.unlink()
    os.symlink(target.parent / new, link.parent / new)


@pytest.mark.parametrize("evil", ["mlx5_\x1b[31m0", "ml\\x5_\t0'\"", "mlx5_\x7f\r0"])
def test_control_characters_in_names(tree, evil):
    """Escaped in text as _printable does, as JSON does, in shell_quote's $'...'."""
    root = tree.private("dgx-h100")
    _rename_nic(root, "mlx5_0", evil)
    (root / "numabind").mkdir(exist_ok=True)
    (root / "numabind/gpu-uuids").write_text("0000:1b:00.0 GPU-\x1b[2J0d1c\\x\n")
    for args in (["show"], ["show", "--json"], ["plan"], ["plan", "--json"], ["env", "--local-rank", "0"]):
        p = same(args, root)
        assert p.returncode == 0
    same(["plan"], root, {"NCCL_IB_HCA": "a\x1bb\\", "LOCAL_RANK": "0"})
    same(["env"], root, {"NCCL_IB_HCA": "a\x1bb\\", "LOCAL_RANK": "0"})


def test_non_ascii_names_are_handed_over(tree):
    """Python escapes by Unicode's isprintable: such output is Python's to write."""
    root = tree.private("dgx-h100")
    _rename_nic(root, "mlx5_0", "mlx5_\u202e0\u00e9")
    for args in (["show"], ["show", "--json"], ["plan"], ["env", "--local-rank", "0"]):
        p = same(args, root, {"NUMABIND_PYTHON": sys.executable})
        assert p.returncode == 0
    p = run([NATIVE], ["show"], environ(root, {"NUMABIND_PYTHON": "/nonexistent/python"}))
    assert p.returncode == 127 and p.stderr.startswith(b"numabind: error: cannot run Python"), p.stderr


def test_output_errors():
    for args in (["show"], ["show", "--json"], ["plan", "--json"]):
        with open("/dev/full", "wb") as full:
            env = environ()
            c = subprocess.run([NATIVE, *args], stdout=full, stderr=subprocess.PIPE, env=env, timeout=60)
            p = subprocess.run([*PYTHON, *args], stdout=full, stderr=subprocess.PIPE, env=env, timeout=60)
        assert (c.returncode, c.stderr) == (p.returncode, p.stderr) == \
               (74, b"numabind: error: cannot write standard output: No space left on device\n")


def test_broken_pipe_is_no_error(tree):
    root = tree("dgx-h100")
    for cmd in ([NATIVE], PYTHON):
        proc = subprocess.Popen([*cmd, "show", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=environ(root))
        proc.stdout.readline()
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read() == b""


STATUS = ("sh", "-c", "grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status; "
          "env | grep -E '^(NVSHMEM|NCCL|UCX|EP_NIC)' | sort; echo \"$@\"", "sh", "a b", "-v")


def test_exec_live_host_unpinned():
    """No GPU here: the command runs unpinned, as Python's exec runs it."""
    for args in (["exec", "--", *STATUS], ["exec", "-v", "--local-rank", "0", *STATUS],
                 ["exec", "--migrate", "--policy", "node", *STATUS]):
        same(args)


def test_exec_pins_as_python_does(tree):
    """plain-2cpu-2gpu's two GPUs on CPUs 0 and 1: both sides pin this process
    from its plan; the command sees the same CPUs, memory nodes and variables."""
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    root = tree(st.load(FIXTURES / "plain-2cpu-2gpu.json"))
    for rank in ("0", "1"):
        p = same(["exec", "-v", "--local-rank", rank, "--", *STATUS], root)
        assert p.returncode == 0
        assert f"Cpus_allowed_list:\t{rank}\n".encode() in p.stdout, p.stdout
        assert b", applied>" in p.stderr
        same(["exec", "--mem", "bind", "--migrate", "--", *STATUS], root, {"LOCAL_RANK": rank})
        same(["exec", "--", *STATUS], root, {"LOCAL_RANK": rank, "NCCL_IB_HCA": "kept"})


def test_exec_errors(tmp_path):
    script = tmp_path / "no-shebang"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    plain = tmp_path / "plain"
    plain.write_text("x")
    for command, code in (([str(tmp_path / "absent")], 127), (["numabind-no-such-command"], 127),
                          ([str(plain)], 126), ([str(script)], 126), ([str(tmp_path)], 126),
                          (["it's"], 127), (["\x1b[31m"], 127)):
        p = same(["exec", "--local-rank", "0", "--", *command])
        assert p.returncode == code, p.stderr
    p = same(["exec"])
    assert p.returncode == 2
    same(["exec", "--"])
    same(["exec", "-v"])


def test_exec_keeps_the_callers_sigint(tmp_path):
    """The command starts with SIGINT as the caller left it: default, or ignored."""
    show = ["sh", "-c", "grep -E '^Sig(Ign|Cgt)' /proc/self/status"]
    for ignore in (False, True):
        pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore else None
        direct = subprocess.run(show, capture_output=True, env=environ(), preexec_fn=pre, timeout=60)
        native = subprocess.run([NATIVE, "exec", "--", *show], capture_output=True, env=environ(),
                                preexec_fn=pre, timeout=60)
        assert native.returncode == 0, native.stderr
        assert native.stdout == direct.stdout
        ignored = int(native.stdout.split(b"SigIgn:")[1].split()[0], 16)
        assert bool(ignored & (1 << (signal.SIGINT - 1))) == ignore


def test_an_empty_command_name_is_python_s_error(tree):
    # os.execvp refuses '' before looking anything up: the native command hands it over
    root = tree(st.load(FIXTURES / "plain-2cpu-2gpu.json"))
    c = same(["exec", "--local-rank", "0", "--policy", "none", "--", ""], root)
    assert c.returncode == 2 and b"cannot be empty" in c.stderr


def test_runs_without_python(tree, tmp_path):
    """show, plan, env and exec need no Python: none on PATH, and a hand-over would fail."""
    root = tree(st.load(FIXTURES / "plain-2cpu-2gpu.json"))
    bare = {"PATH": str(tmp_path), "NUMABIND_PYTHON": str(tmp_path / "no-python")}
    for args in (["show"], ["show", "--json"], ["plan"], ["plan", "--json"], ["env", "--local-rank", "1"],
                 ["exec", "--local-rank", "0", "--policy", "none", "--", "/bin/sh", "-c", "echo ran"],
                 ["exec", "--dry-run", "--local-rank", "1", "--nic", "mlx5_0", "--cpus", "0", "--", "x"],
                 ["plan", "--local-rank", "1", "--gpu", "0", "--mem-nodes", "0", "--mem", "bind"],
                 ["show", "--fsroot", str(root)], ["env", "--fsroot", str(root), "--local-rank", "0"]):
        c = run([NATIVE], args, environ(root, bare))
        p = run(PYTHON, args, environ(root))
        assert (c.returncode, c.stdout, c.stderr) == (p.returncode, p.stdout, p.stderr), args
        assert c.returncode == 0
    c = run([NATIVE], ["gather", "-"], environ(root, bare))
    assert c.returncode == 127 and c.stderr.startswith(b"numabind: error: cannot run Python"), c.stderr
    assert len(c.stderr.splitlines()) == 1


def test_hand_over(tree, tmp_path):
    root = tree("h100x4-flat-vm")
    for args in (["--help"], ["plan", "-h"], [], ["bogus"], ["show", "--svg", "-"],
                 ["plan", "--svg", "-", "--local-rank", "1"], ["exec", "--help"], ["--version"]):
        p = same(args, root)
        assert b"Traceback" not in p.stderr
    out = tmp_path / "node.tar.gz"
    p = run([NATIVE], ["gather", str(out)], environ())
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 0 and b"wrote " in p.stdout


def test_hand_over_signals(tmp_path):
    """Python starts with SIGINT ignored and NUMABIND_RESTORE_SIGINT=1 ..."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\ngrep SigIgn /proc/self/status; echo \"restore=$NUMABIND_RESTORE_SIGINT $*\"\n")
    fake.chmod(0o755)
    p = run([NATIVE], ["gather", "x"], environ(extra={"NUMABIND_PYTHON": str(fake)}))
    ignored = int(p.stdout.split(b"SigIgn:")[1].split()[0], 16)
    assert ignored & (1 << (signal.SIGINT - 1))
    assert b"restore=1 -m numabind gather x\n" in p.stdout
    # ... unless the caller ignored it already: then nothing is restored
    p = run([NATIVE], ["gather", "x"], environ(extra={"NUMABIND_PYTHON": str(fake)}),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert b"restore= -m numabind gather x\n" in p.stdout


def test_cli_restores_sigint(monkeypatch):
    """... and cli.main() puts Python's handler back, unsetting the variable."""
    from numabind import cli

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        monkeypatch.setenv("NUMABIND_RESTORE_SIGINT", "1")
        cli._restore_sigint()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert "NUMABIND_RESTORE_SIGINT" not in os.environ
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cli._restore_sigint()          # unset: left alone
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
