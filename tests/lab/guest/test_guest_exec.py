"""`numabind exec` binds the command it execs from birth: the exec'd
process (the same PID numabind ran as) and what it starts have the rank's
CPUs, memory policy and NIC variables before running a line of their own.
The command is a shell reading its own /proc entries, not Python."""
from __future__ import annotations

import os
import re
import subprocess

import pytest
from labkit import format_list

SCRIPT = r"""
echo "self_cpus=$(grep Cpus_allowed_list /proc/$$/status | cut -f2)"
echo "self_policy=$(awk 'NR==1 {print $2}' /proc/$$/numa_maps)"
echo "hca=$NVSHMEM_HCA_LIST"
exec grep -E '^Cpus_allowed_list' /proc/self/status
"""


@pytest.mark.parametrize("how", ["LOCAL_RANK", "--local-rank"])
def test_exec_binds_the_command_from_birth(layout, how):
    rank = len(layout["ranks"]) - 1 if how == "LOCAL_RANK" else 0
    want = layout["ranks"][rank]
    env = dict(os.environ, LOCAL_WORLD_SIZE=str(len(layout["ranks"])))
    args = ["numabind", "exec"]
    if how == "LOCAL_RANK":
        env["LOCAL_RANK"] = str(rank)
    else:
        env.pop("LOCAL_RANK", None)
        args += ["--local-rank", str(rank)]
    out = subprocess.run(args + ["--", "/bin/sh", "-c", SCRIPT], env=env, check=True, capture_output=True,
                         text=True, timeout=300).stdout
    got = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert got["self_cpus"] == format_list(want["cpus"]), out
    assert got["self_policy"] == f"prefer:{want['node']}", out
    assert got["hca"] == f"{want['hca']}:1", out
    # The shell exec'd grep: the same process again, still bound.
    last = re.search(r"^Cpus_allowed_list:\s*(\S+)$", out, re.MULTILINE)
    assert last and last.group(1) == format_list(want["cpus"]), out
