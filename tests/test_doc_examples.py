"""Every ``console`` and ``python`` example in README.md and docs/*.md runs
as written.

A console block is a list of ``$ COMMAND`` lines, each followed by the output
it shows. Each command runs in bash with the installed ``numabind`` first on
PATH, from a scratch directory, and what it prints (stdout, then stderr) must
match what the block shows: exactly, except that ``...`` stands for any text
within a line, and a line of ``...`` alone for any number of lines.

An HTML comment right above a block says what it runs on:

- ``<!-- example: tree NAME [OPTIONS] -->``: a tree that tests/sysfs_tree.py
  writes (``python tests/sysfs_tree.py NAME DIR OPTIONS``), as
  NUMABIND_FSROOT — the prose beside the block says the same, so a reader
  can write it too;
- ``<!-- example: not run: REASON -->``: a block this machine cannot run
  (GPUs, a launcher); the reason is required and the blocks are listed by
  this test's last case;
- nothing: the block runs on this host as written (``--example NAME`` for
  the bundled machines).

A ``python`` block runs as a script in a fresh interpreter (no GPU here:
``pin_rank`` leaves the process unpinned, with its warning) and must exit 0
without a traceback; one written as a session (``>>>`` lines) runs as a
doctest, its shown output compared.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
CLEAN = ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_LOCALID",
         "NVSHMEM_HCA_LIST", "NCCL_IB_HCA", "UCX_NET_DEVICES", "EP_NIC_NAME", "NVSHMEM_ENABLE_NIC_PE_MAPPING")


@dataclass
class Block:
    doc: str
    line: int
    directive: str
    commands: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(kind: str = "console") -> list[Block]:
    out = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() != "```" + kind:
                continue
            above = next((lines[j].strip() for j in range(i - 1, max(i - 3, -1), -1) if lines[j].strip()), "")
            m = re.fullmatch(r"<!-- example: (.*?) -->", above)
            b = Block(doc.relative_to(ROOT).as_posix(), i + 1, m.group(1) if m else "")
            j = i + 1
            if kind == "python":
                body = []
                while j < len(lines) and lines[j].strip() != "```":
                    body.append(lines[j])
                    j += 1
                b.commands.append(("\n".join(body), []))
                out.append(b)
                continue
            while j < len(lines) and lines[j].strip() != "```":
                if lines[j].startswith("$ "):
                    b.commands.append((lines[j][2:], []))
                elif b.commands:
                    b.commands[-1][1].append(lines[j])
                j += 1
            out.append(b)
    return out


BLOCKS = blocks()
RUN = [b for b in BLOCKS if not b.directive.startswith("not run")]
PY_BLOCKS = blocks("python")
PY_RUN = [b for b in PY_BLOCKS if not b.directive.startswith("not run")]


def pattern(shown: list[str]) -> re.Pattern[str]:
    parts = []
    for line in shown:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(".*?".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.compile("".join(parts))


def strip_comment(command: str) -> str:
    """A trailing `# ...` comment is the reader's, not the shell's."""
    return re.sub(r"\s+#\s[^'\"]*$", "", command)


def environment(block: Block, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    if block.directive.startswith("tree "):
        args = shlex.split(block.directive[len("tree "):])
        root = tmp_path / "tree"
        subprocess.run([sys.executable, str(TESTS / "sysfs_tree.py"), args[0], str(root), *args[1:]],
                       check=True, capture_output=True)
        env["NUMABIND_FSROOT"] = str(root)
    else:
        assert block.directive == "", f"{block.id}: unknown directive {block.directive!r}"
    return env


@pytest.mark.parametrize("block", PY_RUN, ids=[b.id for b in PY_RUN])
def test_python_example_runs_as_written(block, tmp_path):
    env = environment(block, tmp_path)
    code = block.commands[0][0]
    if code.lstrip().startswith(">>>"):
        script = tmp_path / "example.txt"
        script.write_text(code + "\n")
        run = [sys.executable, "-c", "import doctest, sys, numabind; "
               "sys.exit(doctest.testfile(sys.argv[1], module_relative=False, globs={'numabind': numabind}, "
               "optionflags=doctest.ELLIPSIS).failed)", str(script)]
    else:
        run = [sys.executable, "-c", code]
    p = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0 and "Traceback" not in p.stderr, f"{block.id}:\n{code}\n---\n{p.stdout}{p.stderr}"


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_example_runs_as_written(block, tmp_path):
    env = environment(block, tmp_path)
    assert block.commands, f"{block.id}: a console block without a $ command"
    for command, shown in block.commands:
        p = subprocess.run(["bash", "-c", strip_comment(command)], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=120)
        printed = p.stdout + p.stderr
        assert "Traceback" not in printed, f"{block.id}: $ {command}\n{printed}"
        # a command shown failing says so ("error:"); every other one must succeed
        assert p.returncode == 0 or any("error:" in line for line in shown), \
            f"{block.id}: $ {command} exited {p.returncode}\n{printed}"
        assert pattern(shown).fullmatch(printed), \
            f"{block.id}: $ {command}\n--- shown:\n" + "\n".join(shown) + f"\n--- printed:\n{printed}"


def test_blocks_not_run_say_why():
    skipped = [b for b in BLOCKS + PY_BLOCKS if b.directive.startswith("not run")]
    for b in skipped:
        assert re.fullmatch(r"not run: \S.{8,}", b.directive), f"{b.id}: say why it is not run"
    # the README's own commands, a newcomer's first, all run here
    assert not [b for b in skipped if b.doc == "README.md" and "numabind show" in str(b.commands)]
