"""The command line: Typer commands that parse, call one core function, and hand over to output.

Only the standard library, typer/click and ``vizcli.errors`` are imported at top level, so
``vizcli --help`` stays fast; everything heavy is imported inside the command bodies.
"""

from __future__ import annotations

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
        previous_term = _install_sigterm_handler()
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
        finally:
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)
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


def _install_sigterm_handler():
    def _on_term(signal_number, frame):
        raise Interrupted(signal_number)

    try:
        return signal.signal(signal.SIGTERM, _on_term)
    except ValueError:  # not the main thread (e.g. some test runners)
        return None


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


def _not_implemented(command: str) -> None:
    from vizcli.errors import RunFailure

    raise RunFailure(f"'vizcli {command}' is not implemented yet")


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
    from vizcli import render
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
    if output_format in ("csv",):
        out.warn(report.weights_note) if not report.pretrained else None
    with out.open_destination(output, binary=False) as stream:
        if output_format == "json":
            stream.write(out.to_json(render.shapes_document(report, depth, diagram_check)) + "\n")
        elif output_format == "csv":
            rows = []
            for runs in report.tables():
                for row in render.shapes_rows(report, runs[0], depth):
                    rows.append({"input": "×".join(map(str, runs[0].trace.input_shape)), **row})
            for row in rows:
                row["shape"] = "×".join(map(str, row["shape"]))
                for key in ("diagram_nodes",):
                    if key in row:
                        row[key] = " ".join(row[key])
            out.write_records(rows, "csv", stream)
        elif output_format == "markdown":
            stream.write(render.shapes_markdown(report, depth))
        elif output_format == "mermaid":
            stream.write(render.shapes_mermaid(report))


@app.command(
    epilog="Examples:\n\n  vizcli roi examples/chelsea.png --boxes 140,80,210,150 --op both"
)
def roi() -> None:
    """Crop boxes from a ResNet18 feature map with RoIAlign / RoIPool and explain the values."""
    _not_implemented("roi")


@app.command(
    epilog="Examples:\n\n  printf 'a cat\\na dog\\n' | vizcli embed --pooling pooler,mean --similarity"
)
def embed() -> None:
    """Turn sentences into BERT pooler_output (or cls/mean/max) vectors."""
    _not_implemented("embed")


@app.command(epilog="Examples:\n\n  vizcli approx --claims\n\n  vizcli approx --width 1,2,4,8 --plot fit.png")
def approx() -> None:
    """Test the notes' universal-approximation claims with small networks vs polynomials."""
    _not_implemented("approx")
