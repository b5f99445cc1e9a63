"""The GPU checks kept in tests/gpu and benchmarks/gpu: on a host with
NVIDIA GPUs they run here; elsewhere (CI) they are skipped with the reason,
and only what needs no GPU is checked: the scripts compile, and the DeepEP
summary reads the recorded run back to the table in docs/benchmarks.md."""
from __future__ import annotations

import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = [*sorted((REPO / "tests/gpu").glob("*.py")), *sorted((REPO / "benchmarks/gpu").glob("*.py"))]


def _gpus() -> int:
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_deepep_summary_reproduces_the_recorded_table(tmp_path):
    recorded = (REPO / "docs/results/deepep-intranode-4xH200-2026-11-27.txt").read_text()
    runs: dict[str, list[str]] = {}
    mode = None
    for line in recorded.splitlines():
        if line.startswith("round "):
            _, rnd, mode = line.split()[:3]
            mode = f"{mode.rstrip(':')}-{rnd}"
            runs[mode] = []
        elif line.startswith("    [tuning]") and mode:
            runs[mode].append(line.strip())
    assert len(runs) == 15
    for name, lines in runs.items():
        (tmp_path / f"{name}.log").write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, str(REPO / "benchmarks/gpu/summarize_deepep.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    table = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| mode")]
    doc = (REPO / "docs/benchmarks.md").read_text()
    for row in table:
        mode = row.split("|")[1].strip()
        cells = [c.strip() for c in row.split("|")[2:-1]]
        doc_row = next(line for line in doc.splitlines() if line.startswith(f"| {mode} |"))
        assert [c.strip() for c in doc_row.split("|")[2:-1]] == cells, f"{mode}: {row} vs {doc_row}"


@pytest.mark.skipif(_gpus() == 0 or shutil.which("nvidia-smi") is None,
                    reason="needs NVIDIA GPUs: run `bash tests/gpu/run.sh` on a GPU host")
def test_gpu_checks():
    subprocess.run(["bash", str(REPO / "tests/gpu/run.sh")], check=True, timeout=900)
