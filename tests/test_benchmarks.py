"""The benchmark suite's quick mode runs end to end and writes the results table."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_quick_benchmarks_write_results(tmp_path):
    target = tmp_path / "RESULTS.md"
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--output", str(target)],
                            cwd=ROOT, capture_output=True, text=True, timeout=1500)  # a hang guard, not a speed goal
    assert result.returncode == 0, result.stderr[-2000:]
    page = target.read_text()
    for heading in ("## Goals", "## Start-up", "## shapes vs torchinfo", "## roi end to end", "## roi over a dataset", "## embed throughput",
                    "## embed one sentence, cold", "## embed memory"):
        assert heading in page
    goals = page.split("## Goals")[1].split("\n## ")[0]
    assert goals.count("**met**") + goals.count("**not met**") == 13
