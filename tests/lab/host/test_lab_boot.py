"""The runner from the host: each test boots a guest (tools/ci/stage-lab.sh
runs these with NUMABIND_LAB_BOOT=1). Output and exit status come back
unchanged, and every way a guest can fail is a loud, distinct failure,
never a pass: a kernel that cannot boot, a guest whose setup finds the
layout wrong, a boot that runs out of time, a guest that dies under the
command."""
from __future__ import annotations

import shutil
import sys
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


@pytest.mark.parametrize("bad", [["run", "--layout", "9node", "--", "true"], ["run"]])
def test_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as e:
        lab.main(bad)
    assert e.value.code == 2
