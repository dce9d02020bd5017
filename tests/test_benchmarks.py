"""The benchmark suite's quick mode runs end to end and writes the results table.

Three sections run here (start-up, shapes, the roi dataset) and a fourth is regenerated in place
with ``--only``; every section in quick mode takes about 6 minutes, too much of CI's 30.
"""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _bench(*args, timeout=1500):  # a hang guard, not a speed goal
    return subprocess.run([sys.executable, "-m", "benchmarks", "--quick", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_quick_benchmarks_write_results_and_update_sections_in_place(tmp_path):
    target = tmp_path / "RESULTS.md"
    result = _bench("--only", "shapes", "--only", "roi-dataset", "--output", str(target))
    assert result.returncode == 0, result.stderr[-2000:]
    page = target.read_text()
    for heading in ("## Goals", "## shapes vs torchinfo", "## roi over a dataset"):
        assert heading in page
    goals = page.split("## Goals")[1].split("\n## ")[0]
    assert goals.count("**met**") + goals.count("**not met**") == 3
    result = _bench("--only", "startup", "--output", str(target))
    assert result.returncode == 0, result.stderr[-2000:]
    updated = target.read_text()
    assert updated.index("## shapes vs torchinfo") < updated.index("## roi over a dataset") < updated.index("## Start-up")
    assert page.split("## shapes vs torchinfo")[1] in updated  # the sections not rerun are kept as they were
    goals = updated.split("## Goals")[1].split("\n## ")[0]
    assert goals.count("**met**") + goals.count("**not met**") == 4
    assert "sections regenerated in this run: startup" in updated
