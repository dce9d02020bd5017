"""``vizcli shapes``: parse the flags into a ``ShapesRequest``, run it, write what it gives."""

from __future__ import annotations

import copy
from typing import Annotated, Any

import typer

from vizcli.common.choices import Choice
from vizcli.common.options import (
    DeviceOption,
    MaxPixelsOption,
    Optimizer,
    SeedOption,
    ShapesFormat,
    StorageDtype,
    ThreadsOption,
    complete_model_name,
)

INPUT, MODEL, OUTPUT, MEMORY, COMPARISON, ACTIVATIONS = "Input", "Model", "Output", "Memory/Training", "Comparison", "Activations"

EPILOG = (
    "Examples:\n\n"
    "  vizcli shapes examples/chelsea.png        # 69 rows: every conv, bn, relu call, add, flatten\n\n"
    "  vizcli shapes --model resnet18 --model resnet34 --depth 2   # totals side by side, then the blocks aligned\n\n"
    "  vizcli shapes --weights base.pth --weights tuned.pth examples/chelsea.png --sort change   # what fine-tuning changed\n\n"
    "  vizcli shapes examples/chelsea.png --stats --stage-strip stages.png --channel-grid layer1.0.conv1=grid.png\n\n"
    "  vizcli shapes --model my_net.py:build --input-size 3x32x32 --input-size mask=32x32:bool   # several inputs\n\n"
    "  vizcli shapes --check                     # verdict per node of the notes' ResNet18 diagram\n\n"
    "  vizcli shapes --format mermaid > resnet18.md\n\n"
    "  vizcli shapes --plot resnet18.svg --depth 2    # the traced graph, one node per block\n\n"
    "  vizcli shapes --model vit_b_16 --compare       # torchinfo's and FlopCounterMode's counts beside vizcli's, and why\n\n"
    "  vizcli shapes --model fasterrcnn_resnet50_fpn_v2 --depth 1   # detectors run through forward hooks\n\n"
    "  vizcli shapes --model r3d_18 --input-size 3x16x112x112\n\n"
    "  vizcli shapes --model minilm --text 'a cat sits on the mat' --depth 2\n\n"
    "  vizcli shapes --model minilm --seq-len 16,64,256   # MACs against L: where the L² term begins to matter\n\n"
    "Weights are seeded random unless --weights is given: shapes, parameter and MAC counts are exact either way; "
    "predictions are shown only with real weights. 'The notes' are the study notes on ResNet18 that vizcli checks."
)


def _in_panel(alias: Any, panel: str) -> Any:
    """A shared option (declared once in ``vizcli.common.options``) shown in this command's ``panel``."""
    info = copy.copy(alias.__metadata__[0])
    info.rich_help_panel = panel
    return Annotated[alias.__origin__, info]


SeedInModel = _in_panel(SeedOption, MODEL)
DeviceInModel = _in_panel(DeviceOption, MODEL)
ThreadsInModel = _in_panel(ThreadsOption, MODEL)
MaxPixelsInInput = _in_panel(MaxPixelsOption, INPUT)


class ChangeOrder(Choice):
    order = "order"
    change = "change"
    cosine = "cosine"


def shapes(
    images: Annotated[list[str] | None, typer.Argument(
        help="Image files ('-' for stdin). Without one, a seeded synthetic --input-size input is used.")] = None,
    input_size: Annotated[list[str] | None, typer.Option(
        "--input-size", rich_help_panel=INPUT, metavar="SIZE",
        help="The synthetic input, one sample (batch 1 is added): CxHxW, CxTxHxW for video (default: the size torchvision's "
        "figures are for). Your own model: repeat for several inputs, [NAME=]SHAPE[:DTYPE[:HIGH]]: 3x32x32 (positional), "
        "mask=32x32:bool (keyword), batch.ids=16:int64:30522 (key of a dict argument; ids drawn from [0, HIGH)).")] = None,
    keep_size: Annotated[bool, typer.Option(
        "--keep-size", rich_help_panel=INPUT, help="Run images at their own size (no resize 256 / centre-crop 224).")] = False,
    text: Annotated[str | None, typer.Option(
        "--text", rich_help_panel=INPUT, help="Text models: the input, tokenized with the model's own tokenizer.")] = None,
    seq_len: Annotated[str | None, typer.Option(
        "--seq-len", rich_help_panel=INPUT, help="Text models: N seeded random token ids (default 16); three or more lengths "
        "(16,64,256) print MACs as a function of L, fitted to c + a·L + b·L², with the attention share at each L.")] = None,
    max_pixels: MaxPixelsInInput = None,  # type: ignore[valid-type]
    model: Annotated[list[str] | None, typer.Option(
        "--model", rich_help_panel=MODEL, autocompletion=complete_model_name, metavar="NAME",
        help="The model (default resnet18); give it twice or more to compare models. Any torchvision classification, "
        "segmentation, detection or video model; your own: path/to/file.py:factory or package.module:factory (this RUNS that "
        "code, as torchinfo does in your script); a torch.export .pt2; a Hugging Face BERT-family folder, or minilm.")] = None,
    model_arg: Annotated[list[str] | None, typer.Option(
        "--model-arg", rich_help_panel=MODEL, metavar="KEY=VALUE", help="key=value for your factory (a Python literal, else a string); repeatable.")] = None,
    weights: Annotated[list[str] | None, typer.Option(
        "--weights", rich_help_panel=MODEL, metavar="WEIGHTS", help="State-dict file (.pth/.pt/.safetensors), DEFAULT, or a weights name "
        "(IMAGENET1K_V1; downloaded once into the torch hub cache). Twice: compare the two checkpoints.")] = None,
    seed: SeedInModel = 0,  # type: ignore[valid-type]
    device: DeviceInModel = "auto",  # type: ignore[valid-type]
    threads: ThreadsInModel = None,  # type: ignore[valid-type]
    depth: Annotated[int, typer.Option(
        "--depth", min=1, max=3, rich_help_panel=OUTPUT, help="Rows per stage (1), per block (2) or per computation (3); "
        "the --plot graph follows it.")] = 3,
    stdout_format: Annotated[ShapesFormat | None, typer.Option(
        "--format", "-f", case_sensitive=False, rich_help_panel=OUTPUT, help="What stdout shows (default: table).")] = None,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", rich_help_panel=OUTPUT, help="Write the result to FILE (atomically) instead of stdout; its format "
        "from the suffix (.txt, .json, .csv, .mmd, …).")] = None,
    output_format: Annotated[ShapesFormat | None, typer.Option(
        "--output-format", case_sensitive=False, rich_help_panel=OUTPUT, help="The format of -o where its suffix names none.")] = None,
    plot: Annotated[str | None, typer.Option(
        "--plot", rich_help_panel=OUTPUT, help="Draw a picture: the traced graph as .svg/.png (Graphviz; repeated blocks "
        "rolled ×N); when comparing, a .png of each row's MACs per model or of the per-layer change.")] = None,
    check: Annotated[bool, typer.Option(
        "--check", rich_help_panel=OUTPUT, help="Compare the notes' ResNet18 diagram with the run; exit 1 if a stated size "
        "differs.")] = False,
    compare: Annotated[bool, typer.Option(
        "--compare", rich_help_panel=OUTPUT, help="Add torchinfo's and FlopCounterMode's counts, per row and in total, and "
        "why each differing row differs (torchinfo from the test extra).")] = False,
    dtype: Annotated[StorageDtype, typer.Option(
        "--dtype", rich_help_panel=MEMORY, help="The dtype the memory figures assume for parameters and activations.")
    ] = StorageDtype.float32,
    train: Annotated[bool, typer.Option(
        "--train", rich_help_panel=MEMORY, help="Add one training step's memory (parameters, gradients, optimizer state, "
        "saved activations).")] = False,
    optimizer: Annotated[Optimizer, typer.Option(
        "--optimizer", rich_help_panel=MEMORY, help="The optimizer whose state --train sizes (SGD with momentum).")
    ] = Optimizer.adam,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", rich_help_panel=MEMORY, help="The batch of the training step --train sizes.")] = 1,
    sort: Annotated[ChangeOrder, typer.Option(
        "--sort", rich_help_panel=COMPARISON, help="Order the checkpoint comparison's rows: model order, largest change "
        "first, or lowest cosine first.")] = ChangeOrder.order,
    min_change: Annotated[float, typer.Option(
        "--min-change", rich_help_panel=COMPARISON, help="Show only rows whose relative change ‖B−A‖/‖A‖ is at least "
        "this (0.01 = 1%).")] = 0.0,
    stats: Annotated[bool, typer.Option(
        "--stats", rich_help_panel=ACTIVATIONS, help="Add each row's output statistics on the real input: mean, std, min, "
        "max, fraction of zeros, NaN/Inf count (taken during the pass).")] = False,
    stage_strip: Annotated[str | None, typer.Option(
        "--stage-strip", rich_help_panel=ACTIVATIONS, help="Draw the input and each stage's most active feature map, "
        "left to right, into this PNG.")] = None,
    channel_grid: Annotated[list[str] | None, typer.Option(
        "--channel-grid", rich_help_panel=ACTIVATIONS, metavar="LAYER=FILE.png", help="LAYER=FILE.png: draw that row's channels, most active "
        "first, as a grid (e.g. layer1.0.conv1=grid.png); repeatable.")] = None,
) -> None:
    """Run ResNet18 (or another model) and print every computation's output shape, parameters and MACs;
    compare models or checkpoints; show the activations."""
    from vizcli.common.files import file_or_stdout_format
    from vizcli.shapes.command import ShapesRequest, run_request, write_outcome

    request = ShapesRequest(
        images=list(images or []), input_size=list(input_size or []), keep_size=keep_size, depth=depth,
        output_format=file_or_stdout_format(output, stdout_format, output_format), output=output, check=check,
        models=list(model or ["resnet18"]), model_arg=list(model_arg or []), text=text, seq_len=seq_len,
        weights=list(weights or []), seed=seed, dtype=dtype.value, train=train, optimizer=optimizer.value,
        batch_size=batch_size, compare=compare, plot=plot, device=device, threads=threads, max_pixels=max_pixels,
        sort=sort.value, min_change=min_change, stats=stats, stage_strip=stage_strip, channel_grid=list(channel_grid or []),
    )
    write_outcome(run_request(request))
