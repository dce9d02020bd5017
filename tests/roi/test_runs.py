"""vizcli.roi.runs: what a run says and refuses, before any model loads."""

import pytest

from vizcli.common.errors import BadInput
from vizcli.datasets.run import DatasetSummary
from vizcli.roi.runs import RunOptions, Shown, refuse_dataset_flags, summary_line


def _summary(rows, items, skipped=0, problems=0):
    return DatasetSummary(output="out.parquet", items=items, skipped=skipped, rows=rows, problems=problems,
                          problems_path="out.problems.jsonl" if problems else None)


@pytest.mark.parametrize(("summary", "line"), [
    (_summary(36, 1), "wrote 36 rows from 1 image to out.parquet"),
    (_summary(1, 2), "wrote 1 row from 2 images to out.parquet"),
    (_summary(0, 0, skipped=13), "wrote 0 rows from 0 images to out.parquet; 13 images were already finished by an earlier run "
                                 "(resumed, not redone)"),
    (_summary(4, 3, skipped=1, problems=1), "wrote 4 rows from 3 images to out.parquet; 1 image was already finished by an "
                                            "earlier run (resumed, not redone); 1 problem recorded in out.problems.jsonl"),
])
def test_the_summary_counts_in_words(summary, line):
    assert summary_line(summary) == line


def test_what_single_images_show_is_named_as_typed_when_a_dataset_refuses_it():
    assert Shown().given() == [] and Shown(output="x.parquet").given() == []
    assert Shown(stdout_format="json", channel=3).given() == ["--format json", "--channel 3"]
    with pytest.raises(BadInput, match="--resume, --shard run datasets"):
        refuse_dataset_flags(["--resume", "--shard"])
    refuse_dataset_flags([])


@pytest.mark.parametrize(("options", "fragment"), [(RunOptions(batch_size=0), "batch_size=0: use 1..1024 images"),
                                                   (RunOptions(decode_threads=65), "decode_threads=65: use 1..64 threads")])
def test_run_options_are_checked(options, fragment):
    with pytest.raises(BadInput, match=fragment):
        options.check()
