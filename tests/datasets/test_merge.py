"""``merge_outputs``: a merge writes a new output, and says so where finished units already lie."""

import pytest

from tests.datasets import fake_job
from vizcli.common.errors import BadInput
from vizcli.datasets.merge import merge_outputs
from vizcli.datasets.run import run_dataset


def test_a_merge_into_a_folder_of_finished_units_is_refused_without_advising_resume(tmp_path):
    part = tmp_path / "part.parquet"
    run_dataset(fake_job.job(), fake_job.pieces(40), fake_job.settings(str(part), 16))
    earlier = tmp_path / "earlier"
    run_dataset(fake_job.job(), fake_job.pieces(40), fake_job.settings(f"{earlier}/", 16))
    before = sorted(path.name for path in earlier.iterdir())
    with pytest.raises(BadInput) as caught:
        merge_outputs([str(part)], f"{earlier}/", ("id",))
    assert "finished units of an earlier run" in str(caught.value) and "resume" not in str(caught.value)
    assert sorted(path.name for path in earlier.iterdir()) == before
    path, rows = merge_outputs([str(part)], str(tmp_path / "merged.parquet"), ("id",))
    assert rows == 40
