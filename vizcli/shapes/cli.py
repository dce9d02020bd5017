"""``vizcli shapes``: parse the flags, run the shapes report, hand it to the renderer."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.options import (
    DeviceOption,
    MaxPixelsOption,
    Optimizer,
    OutputOption,
    SeedOption,
    ShapesFormat,
    StorageDtype,
    ThreadsOption,
    WeightsOption,
    complete_model_name,
)

FORMAT_BY_EXTENSION = {"json": "json", "csv": "csv", "md": "markdown", "mmd": "mermaid", "txt": "table"}

EPILOG = (
    "Examples:\n\n"
    "  vizcli shapes examples/chelsea.png        # 69 rows: every conv, bn, relu call, add, flatten\n\n"
    "  vizcli shapes --check                     # verdict per node of the notes' diagram\n\n"
    "  vizcli shapes --input-size 3x320x320 --check\n\n"
    "  vizcli shapes --format mermaid > resnet18.md\n\n"
    "  vizcli shapes --plot resnet18.svg              # the traced graph, repeated blocks rolled (×N)\n\n"
    "  vizcli shapes --model vit_b_16 --compare       # torchinfo's and FlopCounterMode's counts beside vizcli's, and why\n\n"
    "  vizcli shapes --model resnet50 --depth 1\n\n"
    "  vizcli shapes --model fasterrcnn_resnet50_fpn_v2 --depth 1   # detectors run through forward hooks\n\n"
    "  vizcli shapes --model r3d_18 --input-size 3x16x112x112\n\n"
    "  vizcli shapes --model my_net.py:build --model-arg width=64 --input-size 3x32x32   # runs my_net.py\n\n"
    "  vizcli shapes --model minilm --text 'a cat sits on the mat' --depth 2\n\n"
    "  vizcli shapes --model minilm --seq-len 16,64,256   # MACs against L: where the L² term begins to matter\n\n"
    "Weights are seeded random unless --weights is given: shapes, parameter and MAC counts are "
    "exact either way; predictions are shown only with real weights."
)


def shapes(
    images: Annotated[
        list[str] | None,
        typer.Argument(help="Image files ('-' for stdin). Without one, a synthetic --input-size tensor is used."),
    ] = None,
    input_size: Annotated[
        str | None,
        typer.Option(
            "--input-size",
            help="CxHxW of the synthetic input, CxTxHxW for video models (default: the input torchvision's figures are for: "
            "the weights' crop size, 520 for segmentation, 800 for detection, 16 frames for video).",
        ),
    ] = None,
    keep_size: Annotated[
        bool, typer.Option("--keep-size", help="Skip resize 256 / centre-crop 224: run at the image's own size.")
    ] = False,
    depth: Annotated[
        int, typer.Option("--depth", min=1, max=3, help="1 stages, 2 blocks, 3 every computation.")
    ] = 3,
    output_format: Annotated[
        ShapesFormat | None,
        typer.Option("--format", "-f", case_sensitive=False, help="What to print (default: from -o's extension, else table)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Compare the notes' diagram with the measured run; exit 1 if a stated size differs."),
    ] = False,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Any torchvision classification, segmentation (fcn_*, deeplabv3_*, lraspp_*), detection "
            "(fasterrcnn_*, retinanet_*, ssd*, fcos_*, maskrcnn_*, keypointrcnn_*) or video (r3d_18, mvit_*, swin3d_*, …) model; "
            "your own: path/to/file.py:factory or package.module:factory (this RUNS that code, as torchinfo does in your "
            "script: the one place vizcli runs code, see docs/security.md); or a Hugging Face BERT-family folder, or minilm (the bundled all-MiniLM-L6-v2).",
            autocompletion=complete_model_name,
        ),
    ] = "resnet18",
    model_arg: Annotated[
        list[str] | None, typer.Option("--model-arg", help="key=value for your factory (a Python literal, else a string); repeatable.")
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Text models: the input, tokenized with the model's own tokenizer.")] = None,
    seq_len: Annotated[str | None, typer.Option(
        "--seq-len", help="Text models: N seeded random token ids (default 16); three or more lengths (16,64,256) print MACs "
        "as a function of L, fitted to c + a·L + b·L², with the attention share at each L.")] = None,
    weights: WeightsOption = None,
    seed: SeedOption = 0,
    dtype: Annotated[
        StorageDtype, typer.Option("--dtype", help="The dtype the memory figures assume for parameters and activations.")
    ] = StorageDtype.float32,
    train: Annotated[
        bool, typer.Option("--train", help="Add one training step's memory (parameters, gradients, optimizer state, saved activations).")
    ] = False,
    optimizer: Annotated[Optimizer, typer.Option("--optimizer", help="The optimizer --train sizes (SGD with momentum).")] = Optimizer.adam,
    batch_size: Annotated[int, typer.Option("--batch-size", help="The batch --train sizes.")] = 1,
    output: OutputOption = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Add what torchinfo and torch's FlopCounterMode count, per row and in total, and "
                           "say why each differing row differs (torchinfo from the test extra).")
    ] = False,
    plot: Annotated[
        str | None, typer.Option("--plot", help="Draw the traced graph into this .svg or .png (Graphviz), repeated blocks rolled "
                                 "into one marked ×N.")
    ] = None,
    device: DeviceOption = "auto",
    threads: ThreadsOption = None,
    max_pixels: MaxPixelsOption = None,
) -> None:
    """Run ResNet18 (or another torchvision model) and print every computation's output shape."""
    from vizcli.common.errors import BadInput, RunFailure
    from vizcli.common.files import check_not_an_input, check_writable, choose_format

    fmt = choose_format(output, output_format.value if output_format else None, FORMAT_BY_EXTENSION, "table")
    check_writable(output)
    check_not_an_input(output, [*(images or []), weights])
    if plot is not None:
        from vizcli.shapes.graph import check_plot_path

        check_plot_path(plot, output)
        check_writable(plot, parameter="plot")
        check_not_an_input(plot, [*(images or []), weights], parameter="plot")
    if check and model != "resnet18":
        raise BadInput(f"--check compares with the notes' ResNet18 diagram; drop --model {model} or --check")
    from vizcli.common.console import warn
    from vizcli.common.runtime import set_threads
    from vizcli.shapes.diagram import check_diagram
    from vizcli.shapes.render import print_shapes
    from vizcli.shapes.report import MemoryOptions, run_shapes

    set_threads(threads, warn)
    memory = MemoryOptions(dtype.value, train, optimizer.value, batch_size)
    from vizcli.shapes.any_model import is_any_model, parse_model_args
    from vizcli.shapes.sweep import parse_seq_lens

    lengths = parse_seq_lens(seq_len)
    if lengths is not None and len(lengths) > 1:
        if plot is not None or compare:
            raise BadInput(f"--{'plot' if plot is not None else 'compare'} is for one traced run; give one --seq-len")
        _sweep(model, lengths, images, input_size, text, model_arg, weights, check, seed, device, fmt, output)
        return
    if is_any_model(model):
        if weights is not None or keep_size:
            raise BadInput(f"--{'weights' if weights is not None else 'keep-size'} is for torchvision models; your factory or "
                           "model folder brings its own weights and input")
        from vizcli.shapes.report import run_any_shapes

        report = run_any_shapes(model, list(images or []), input_size, parse_model_args(model_arg or []), text,
                                lengths[0] if lengths else None, seed, device, max_pixels, memory)
    else:
        if model_arg or text is not None or seq_len is not None:
            raise BadInput("--model-arg, --text and --seq-len are for your own or text models (file.py:factory, a model folder, minilm)")
        report = run_shapes(list(images or []), input_size, keep_size, model, weights, seed, device, max_pixels, memory)
    if compare and report.runs[0].trace.error is None:
        from vizcli.shapes.compare import compare_counts

        report.comparison = compare_counts(report.model, report.runs[0].example, report.runs[0].trace)
    diagram_check = check_diagram(report.runs[0].trace, report.model) if check else None
    print_shapes(report, depth, fmt, diagram_check, output)
    if plot is not None and report.runs[0].trace.records:
        from vizcli.shapes.graph import write_graph

        traced = report.runs[0].trace
        write_graph(traced.records, traced.input_shape, f"{report.model_name} · input {'×'.join(map(str, traced.input_shape))}",
                    report.task == "text", plot)
    failed = [run for run in report.runs if run.trace.error is not None]
    if failed:
        raise RunFailure(failed[0].failure_message())
    if diagram_check is not None and not diagram_check.all_hold:
        first = diagram_check.differing[0]
        raise RunFailure(
            f"{len(diagram_check.differing)} sizes stated by the notes' diagram differ from the measured run "
            f"(first: {first.node.id} states {first.node.size}, measured {first.measured})"
        )


def _sweep(model: str, lengths: list[int], images, input_size, text, model_arg, weights, check: bool, seed: int, device: str,
           fmt: str, output: str | None) -> None:
    """``--seq-len 16,64,256``: the sweep of a text model (see ``vizcli.shapes.sweep``)."""
    from vizcli.common.errors import BadInput
    from vizcli.shapes.any_model import FACTORY, is_any_model
    from vizcli.shapes.sweep import print_sweep, sweep_seq_lens

    if not is_any_model(model) or FACTORY.match(model):
        raise BadInput("a --seq-len sweep is for text models (a BERT-family folder, minilm)", parameter="model", value=model)
    if images or input_size or text is not None or model_arg or weights is not None or check:
        raise BadInput("a --seq-len sweep takes the model and the lengths only; drop images, --input-size, --text, --model-arg, "
                       "--weights and --check")
    print_sweep(sweep_seq_lens(model, lengths, seed, device), fmt, output)
