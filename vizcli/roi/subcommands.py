"""``vizcli roi merge|verify|export``: what is done with finished roi outputs."""

from __future__ import annotations

from vizcli.common.console import info
from vizcli.common.errors import BadInput


def run_subcommand(name: str, outputs: list[str], output: str | None, quiet: bool, shard_format: str = "safetensors",
                   sample: int = 8, tolerance: float | None = None, images_root: str | None = None, device: str = "auto",
                   layout: str = "butd-tsv", feature: str | None = None) -> None:
    """``merge`` joins ``outputs`` into ``output``; ``verify`` recomputes a sample of one; ``export``
    writes one in a bottom-up-attention ``layout``."""
    say = (lambda message: None) if quiet else info
    if name == "merge":
        from vizcli.common.formats import ROI_DATASET_SCHEMA
        from vizcli.datasets.merge import merge_command

        path, rows = merge_command(outputs, output, "roi", ROI_DATASET_SCHEMA, ("image", "annotation_id"), shard_format)
        say(f"merged {len(outputs)} outputs: {rows:,} rows to {path}")
    elif name == "verify":
        from vizcli.datasets.options import verify_command
        from vizcli.roi.verify import verify_roi

        verify_command(outputs, lambda path: verify_roi(path, sample, tolerance, images_root, device))
    elif name == "export":
        from vizcli.roi.export import export_command

        if len(outputs) != 1:
            raise BadInput(f"export takes one output (a Parquet file or a shard folder), got {len(outputs)}")
        written, count = export_command(outputs[0], layout, output, feature)
        say(f"wrote {count:,} images in the {layout} layout to {written}")
    else:
        raise BadInput(f"unknown subcommand {name!r}")
