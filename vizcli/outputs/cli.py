"""``vizcli info | verify | merge | export``: the verbs that act on any finished output.

Each reads what kind of output it was given from the output itself. Standard library and typer
only at import (``vizcli --help`` imports this module).
"""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.options import DeviceOption, QuietOption, ShardFormat
from vizcli.datasets.options import DEFAULT_SAMPLE

OUTPUTS_HELP = "A Parquet file or shard folder from vizcli roi, detect or embed, or a single-input .npz/.safetensors/.pt/.npy."
StoredArgument = Annotated[str, typer.Argument(metavar="OUTPUT", help=OUTPUTS_HELP, show_default=False)]

INFO_EPILOG = "Examples:\n\n  vizcli info feats.parquet\n\n  vizcli info vectors/ --format json | jq .settings"
VERIFY_EPILOG = ("Examples:\n\n  vizcli verify feats.parquet\n\n  vizcli verify vectors/ --sample 32\n\n"
                 "  vizcli verify feats.parquet --root /data/images   # the images moved since the run\n\n"
                 "Exit status: 0 when every sampled row is reproduced, 1 when any differs.")
MERGE_EPILOG = ("Examples:\n\n  vizcli merge part0.parquet part1.parquet -o all.parquet\n\n"
                "  vizcli merge cat.npz dog.npz -o pets.parquet      # single-image results gathered into one dataset")
EXPORT_EPILOG = ("Examples:\n\n  vizcli export feats.parquet --layout butd-tsv -o feats.tsv\n\n"
                 "  vizcli export feats.parquet --layout butd-npz -o feats_npz/\n\n"
                 "  vizcli export vectors.parquet --layout npy --feature mean -o vectors.npy\n\n"
                 "Layouts: roi and detect outputs: butd-tsv (bottom-up-attention's generate_tsv.py fields), butd-npz (one "
                 ".npz an image, as bottom-up-attention.pytorch); embed outputs: jsonl, tsv, npy.")


def info(
    output: StoredArgument,
    output_format: Annotated[str, typer.Option("--format", "-f", help="What stdout shows: text or json.",
                                               rich_help_panel="Output")] = "text",
) -> None:
    """Show what an output holds: its kind, rows, columns, recorded settings, weights and problems."""
    from vizcli.common.errors import BadInput
    from vizcli.common.formats import to_json
    from vizcli.outputs.info import describe_output, info_lines

    if output_format not in ("text", "json"):
        raise BadInput("use text or json", parameter="output_format", value=output_format)
    description = describe_output(output)
    print(to_json(description) if output_format == "json" else "\n".join(info_lines(description)))


def verify(
    output: StoredArgument,
    sample: Annotated[int, typer.Option("--sample", help="How many stored items (images, texts) to recompute.",
                                        rich_help_panel="Sampling")] = DEFAULT_SAMPLE,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample's choice.", rich_help_panel="Sampling")] = 0,
    tolerance: Annotated[float | None, typer.Option("--tolerance", help="The largest difference accepted (default: by the "
                                                    "recorded compute dtype: 1e-4 for float32).", rich_help_panel="Sampling")] = None,
    root: Annotated[str | None, typer.Option("--root", help="The folder the inputs (images, text files, weights) moved to "
                                             "since the run.", rich_help_panel="Inputs")] = None,
    device: DeviceOption = "auto",
    images_root: Annotated[str | None, typer.Option("--images-root", hidden=True)] = None,
) -> int:
    """Recompute a sample of an output's rows from the settings it records; exit 1 unless every column matches."""
    from vizcli.common.errors import BadInput, RunFailure
    from vizcli.outputs.verify import verify_output

    if images_root is not None:
        raise BadInput("is now --root FOLDER: the folder the inputs (images, text files, weights) moved to", parameter="images_root")

    verification = verify_output(output, sample, seed, tolerance, device, root)
    print("\n".join(verification.lines()))
    if not verification.ok:
        worst = max(verification.differences.values(), default=0.0)
        reason = verification.mismatches[0] if verification.mismatches else f"largest difference {worst:.3g}"
        raise RunFailure(f"not reproduced: {reason} (tolerance {verification.tolerance:g})", parameter="stored", value=output)
    return 0


def merge(
    outputs: Annotated[list[str], typer.Argument(metavar="OUTPUT", help="Finished outputs of one command. " + OUTPUTS_HELP,
                                                 show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Where the joined rows go: out.parquet, or DIR/ for shards.",
                                        rich_help_panel="Output", show_default=False)],
    shard_format: Annotated[ShardFormat, typer.Option("--shard-format", help="The files of an -o DIR/ output.",
                                                      rich_help_panel="Output")] = ShardFormat.safetensors,
    quiet: QuietOption = False,
) -> None:
    """Join finished outputs of one command into one (their settings must agree; no row may repeat)."""
    from vizcli.common.console import info as say
    from vizcli.outputs.merge import merge_outputs

    written, rows, kind = merge_outputs(list(outputs), output, shard_format.value)
    if not quiet:
        say(f"merged {_count(len(outputs), 'output')} of {kind}: wrote {_count(rows, 'row')} to {written}")


def export(
    output: StoredArgument,
    destination: Annotated[str, typer.Option("--output", "-o", help="The file or folder to write ('-' for stdout where the "
                                             "layout is one file).", rich_help_panel="Output", show_default=False)],
    layout: Annotated[str | None, typer.Option("--layout", help="butd-tsv or butd-npz (roi, detect); jsonl, tsv or npy (embed). "
                                               "Default: the first of the output's kind.", rich_help_panel="Output")] = None,
    feature: Annotated[str | None, typer.Option("--feature", help="Which stored vectors to write: box-head or align (roi, "
                                                "detect), a pooling such as mean (embed).", rich_help_panel="Output")] = None,
    quiet: QuietOption = False,
    op: Annotated[str | None, typer.Option("--op", hidden=True)] = None,
) -> None:
    """Write an output in a layout other tools read (bottom-up-attention TSV/npz, JSON lines, TSV, .npy)."""
    from vizcli.common.console import info as say
    from vizcli.common.errors import BadInput
    from vizcli.outputs.export import export_output

    if op is not None:
        raise BadInput(f"is now --feature {op}: which stored vectors to write", parameter="op")

    written, count, chosen = export_output(output, layout, destination, feature)
    if not quiet:
        say(f"wrote {_count(count, 'row' if chosen in ('jsonl', 'tsv', 'npy') else 'image')} in the {chosen} layout to {written}")


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
