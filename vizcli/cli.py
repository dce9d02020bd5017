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


@app.command(
    epilog=(
        "Examples:\n\n"
        "  vizcli shapes examples/chelsea.png\n\n"
        "  vizcli shapes --check\n\n"
        "  vizcli shapes --format mermaid > resnet18.md\n\n"
        "  vizcli shapes --model resnet50 --depth 1"
    )
)
def shapes() -> None:
    """Run ResNet18 (or another torchvision model) and print every layer's output shape."""
    _not_implemented("shapes")


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
