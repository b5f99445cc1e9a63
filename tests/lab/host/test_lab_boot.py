"""The runner from the host: each test boots a guest (tools/ci/stage-lab.sh
runs these with NUMABIND_LAB_BOOT=1). Output and exit status come back
unchanged, and every way a guest can fail is a loud, distinct failure,
never a pass: a kernel that cannot boot, a guest whose setup finds the
layout wrong, a boot that runs out of time, a guest that dies under the
command, a command that hangs (the guest's watchdog shows where), a guest
that stops answering."""
from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools" / "lab"))
import lab

LAYOUT = lab.LAYOUTS["2node"]


@pytest.fixture
def failed_runs():
    """Run directories a failing run keeps, removed after the test."""
    kept: list[lab.Result] = []
    yield kept
    for res in kept:
        if res.run_dir:
            shutil.rmtree(res.run_dir, ignore_errors=True)


def console(res: lab.Result) -> str:
    assert res.run_dir is not None, "a failed run keeps its directory"
    return (res.run_dir / "console.log").read_text(errors="replace")


def test_output_exit_status_venv_and_cwd_come_through(tmp_path):
    venv = Path(sys.prefix)
    script = """command -v numabind; echo "$VIRTUAL_ENV"; pwd; grep -c '"name": "2node"' "$NUMABIND_LAB_LAYOUT"
                echo to-stderr >&2; printf 'no newline'; exit 7"""
    res = lab.run(LAYOUT, ["sh", "-c", script], venv=venv, cwd=tmp_path, capture=True, timeout=300)
    assert res.rc == 7 and not res.reason
    assert res.output == f"{venv}/bin/numabind\n{venv}\n{tmp_path}\n1\nto-stderr\nno newline"
    assert res.boot_s is not None and res.command_s is not None


def test_a_kernel_that_cannot_boot_fails_loudly(capsys, failed_runs):
    res = lab.run(LAYOUT, ["true"], capture=True, timeout=300, append="rdinit=/no/such/init")
    failed_runs.append(res)
    assert res.rc == lab.BOOT_FAILED
    assert "GUEST FAILED TO BOOT" in res.reason
    assert "Kernel panic" in console(res)
    err = capsys.readouterr().err
    assert "GUEST FAILED TO BOOT" in err and "Kernel panic" in err  # the console tail is shown


def test_a_guest_that_finds_the_layout_wrong_does_not_run_the_command(monkeypatch, failed_runs):
    """QEMU given one GPU fewer than the layout: the guest's setup notices
    and refuses to run the command."""
    real = lab.qemu_args

    def one_gpu_short(*a, **kw):
        args = real(*a, **kw)
        i = next(i for i, x in enumerate(args) if x.startswith("pci-testdev,"))
        return args[:i - 1] + args[i + 1:]

    monkeypatch.setattr(lab, "qemu_args", one_gpu_short)
    res = lab.run(LAYOUT, ["sh", "-c", "echo ran"], capture=True, timeout=300)
    failed_runs.append(res)
    assert res.rc == lab.BOOT_FAILED
    assert "guest setup failed" in res.reason and "found 2 GPU stand-ins" in res.reason
    assert "ran" not in res.output


def test_a_boot_out_of_time_fails_loudly(failed_runs):
    res = lab.run(LAYOUT, ["true"], capture=True, timeout=3)
    failed_runs.append(res)
    assert res.rc == lab.BOOT_FAILED
    assert "GUEST FAILED TO BOOT (timed out after 3 s)" in res.reason


def test_a_guest_dying_under_the_command_is_not_a_pass(failed_runs):
    res = lab.run(LAYOUT, ["sh", "-c", "echo started; echo c > /proc/sysrq-trigger; sleep 60"],
                  capture=True, timeout=300)
    failed_runs.append(res)
    assert res.rc == lab.NOT_FINISHED
    assert "the command did not finish" in res.reason
    assert res.output.startswith("started")
    assert "sysrq: Trigger a crash" in console(res)


def test_a_hanging_command_is_stopped_by_the_guest_with_every_process_s_state(failed_runs):
    """Past its deadline the guest prints each process's threads, where
    they wait in the kernel and (faulthandler, on SIGABRT) every Python's
    stack, then stops the command: the hang's place is in the log."""
    hang = "import time\ndef stuck_here():\n    time.sleep(600)\nstuck_here()\n"
    res = lab.run(LAYOUT, ["sh", "-c", f"echo started; python3 -c '{hang}'"], capture=True, timeout=300,
                  deadline=40)
    failed_runs.append(res)
    assert res.rc == lab.NOT_FINISHED
    assert "ran past its deadline (guest uptime 40 s)" in res.reason
    out = res.output
    assert out.startswith("started") and "== lab watchdog: the command is still running" in out
    assert "python3 -c import time" in out                      # the process, by its command line
    assert "waiting in hrtimer_nanosleep" in out or "do_nanosleep" in out   # its kernel wait
    assert 'in stuck_here' in out                               # its Python stack, from faulthandler
    assert res.wall_s < 200, "the watchdog, not the host timeout, ended it"


def _freeze_at_ready(run_dirs: list[Path], frozen: threading.Event) -> None:
    """Once the command runs, stop the guest's CPUs through QEMU's QMP."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (run_dirs and (run_dirs[0] / "ready").exists()):
        time.sleep(0.2)
    time.sleep(5)  # a heartbeat or two first
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(run_dirs[0] / "qmp.sock"))
        f = s.makefile("rw")
        f.readline()  # the greeting
        for cmd in ("qmp_capabilities", "stop"):
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            while "return" not in (reply := json.loads(f.readline())):
                assert "error" not in reply, reply   # events (STOP) may come first
    frozen.set()


def test_a_guest_that_stops_answering_is_told_from_a_hanging_command(monkeypatch, failed_runs):
    """QEMU stopped under the command: no watchdog can run, the heartbeat
    goes stale, and the runner says the guest froze (exit 123)."""
    real, run_dirs, frozen = lab.qemu_args, [], threading.Event()

    def remember(layout, kernel, run_dir, *a, **kw):
        run_dirs.append(run_dir)
        return real(layout, kernel, run_dir, *a, **kw)

    monkeypatch.setattr(lab, "qemu_args", remember)
    t = threading.Thread(target=_freeze_at_ready, args=(run_dirs, frozen), daemon=True)
    t.start()
    res = lab.run(LAYOUT, ["sh", "-c", "echo started; exec sleep 600"], capture=True, timeout=70, deadline=45)
    failed_runs.append(res)
    t.join(timeout=10)
    assert frozen.is_set(), "QMP never stopped the guest"
    assert res.rc == lab.STOPPED_ANSWERING
    assert "THE GUEST STOPPED ANSWERING" in res.reason and "last heartbeat was at uptime" in res.reason


@pytest.mark.parametrize("bad", [["run", "--layout", "9node", "--", "true"], ["run"]])
def test_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as e:
        lab.main(bad)
    assert e.value.code == 2
