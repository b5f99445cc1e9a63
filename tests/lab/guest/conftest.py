"""Fixtures for the tests that run inside a lab guest.

The runner (tools/lab/lab.py) writes the layout it booted, with what
numabind should make of it, to ``$NUMABIND_LAB_LAYOUT``; ``layout`` is that
JSON. Everything the tests expect comes from it, never from what the guest
shows, so a guest that came up differently fails.
"""
from __future__ import annotations

import json
import os

import pytest

if not os.environ.get("NUMABIND_LAB_LAYOUT"):
    raise pytest.UsageError("tests/lab/guest runs inside a lab guest: "
                            "python3 tools/lab/lab.py run --layout 2node -- python -m pytest tests/lab/guest")

with open(os.environ["NUMABIND_LAB_LAYOUT"]) as _f:
    LAYOUT = json.load(_f)


@pytest.fixture(scope="session")
def layout() -> dict:
    return LAYOUT


@pytest.fixture(scope="session", autouse=True)
def no_numa_balancing():
    """Automatic NUMA balancing moves pages toward the CPUs touching them,
    on its own schedule: off, so that where a page is says what the memory
    policy (or migrate_pages) did, and nothing else."""
    path = "/proc/sys/kernel/numa_balancing"
    if os.path.exists(path):
        with open(path, "w") as f:
            f.write("0\n")
        with open(path) as f:
            assert f.read().strip() == "0"
    yield


def pytest_report_header(config):
    return f"lab layout {LAYOUT['name']}: {LAYOUT['description']}"


def pytest_generate_tests(metafunc):
    """`rank`: every local rank of the layout (one per GPU)."""
    if "rank" in metafunc.fixturenames:
        metafunc.parametrize("rank", range(len(LAYOUT["ranks"])),
                             ids=[f"rank{i}-{r['gpu']}-node{r['node']}" for i, r in enumerate(LAYOUT["ranks"])])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skip in the lab is a failure: every test here runs in a guest made
    for it, so a skip means the guest is not what the test needs, and it
    must not pass quietly."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped inside the lab, which counts as a failure: {report.longrepr}"
