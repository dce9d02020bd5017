"""The command line: the app, the one error boundary, ``--version``/``--debug``, and the commands.

Each command lives in its own package (``vizcli/<command>/cli.py``) and is registered here.
Only the standard library, typer and ``vizcli.common`` light modules are imported at top
level, so ``vizcli --help`` stays fast; everything heavy is imported inside command bodies.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
from typing import Any

import typer
from typer.core import TyperGroup

from vizcli import __version__
from vizcli.approx import cli as approx_cli
from vizcli.common import console, signals
from vizcli.common.console import tolerate_narrow_encodings
from vizcli.common.errors import Interrupted, VizcliError, one_line
from vizcli.common.files import OS_WRITE_ERRORS
from vizcli.common.usage import click_errors, usage_message
from vizcli.embed import cli as embed_cli
from vizcli.outputs import cli as outputs_cli
from vizcli.roi import cli as roi_cli
from vizcli.roi import detect_cli
from vizcli.search import cli as search_cli
from vizcli.shapes import cli as shapes_cli

# Core parameter names whose flag is not simply --name-with-dashes.
PARAMETER_FLAGS = {
    "output": "-o",
    "output_format": "--format",
    "model_name": "--model",
    "spec": "--model",
    # the core's names for positional arguments: the message shows the value alone
    "dataset": "",
    "inputs": "",
    "images": "",
    "texts": "",
    "image": "image",  # one positional image: "image PATH: …", as the decoding errors say it
    "stored": "",  # the OUTPUT that info/verify/merge/export read
    "destination": "-o",
}

class _ErrorBoundary(TyperGroup):
    """Turns every known error into one ``Error: …`` line on stderr and an exit code.

    2: bad input or usage; 1: failure at run time; 128 + N: signal N. Unknown exceptions
    are bugs and keep their traceback.
    """

    def main(self, *args: Any, **extra: Any) -> Any:
        extra["standalone_mode"] = False
        _escape_markup(self)
        run = extra.setdefault("obj", {})  # this invocation's settings: --debug (the callback sets it)
        run.setdefault("debug", bool(os.environ.get("VIZCLI_DEBUG")))
        previous_handlers = signals.install()
        tolerate_narrow_encodings()
        try:
            with warnings.catch_warnings(), console.speaking_flags(self._flags()):
                # third-party warnings (torch's weights_only, torchvision's FutureWarnings) would
                # precede the one Error: line; --debug shows them
                warnings.simplefilter("default" if run["debug"] else "ignore")
                result = super().main(*args, **extra)
            code = result if isinstance(result, int) else 0
        except click_errors.NoArgsIsHelpError as error:
            print(error.ctx.get_help(), file=sys.stderr)
            code = 2
        except click_errors.ClickException as error:
            _print_error(usage_message(error))
            code = 2
        except typer.Abort:
            _print_error("interrupted by SIGINT; no output file was written")
            code = 130
        except (VizcliError, Interrupted) as error:
            if run["debug"]:
                raise
            _print_error(error.for_command_line(self._flags()))
            code = error.exit_code
        except BrokenPipeError:
            signals.silence_stdout()
            code = 0
        except SystemExit as done:  # click turns a closed pipe into sys.exit(1): `vizcli … | head -1` is a success
            context = done.__context__
            if not (isinstance(context, OSError) and context.errno == errno.EPIPE):
                raise
            signals.silence_stdout()
            code = 0
        except ImportError as error:  # a library that cannot load (under ulimit -v, its shared objects cannot be mapped)
            if run["debug"]:
                raise
            _print_error(f"could not load {error.name or 'a library'} ({one_line(str(error))[:160]}); if memory is "
                         "limited (ulimit -v), raise the limit; else reinstall vizcli (make setup)")
            code = 1
        except MemoryError:
            if run["debug"]:
                raise
            _print_error("out of memory; use smaller inputs, fewer boxes or a smaller --batch-size")
            code = 1
        except OSError as error:
            if error.errno not in OS_WRITE_ERRORS or run["debug"]:
                raise
            _print_error(f"writing output failed: {error.strerror}; free space or write elsewhere (-o FILE)")
            signals.silence_stdout()
            code = 1
        finally:
            signals.restore(previous_handlers)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            signals.silence_stdout()
        sys.exit(code)


    def _flags(self) -> dict[str, str]:
        """Every command's parameter names → the flag a user types (the longest, or PARAMETER_FLAGS')."""
        flags: dict[str, str] = {}
        for command in self.commands.values():
            for param in command.params:
                if param.name and param.opts and param.opts[0].startswith("-"):
                    flags.setdefault(param.name, max(param.opts, key=len))
        return {**flags, **PARAMETER_FLAGS}


def _escape_markup(group: TyperGroup) -> None:
    """Help texts are plain text: brackets such as ``[x1,y1,x2,y2]`` or ``vizcli[ray]`` must show as typed, not as
    rich markup (the help is rendered by rich, in panels)."""
    from rich.markup import escape

    for command in [group, *group.commands.values()]:
        for attribute in ("help", "epilog", "short_help"):
            text = getattr(command, attribute, None)
            if text:
                setattr(command, attribute, escape(text))
        for param in command.params:
            if getattr(param, "help", None):
                param.help = escape(param.help)  # type: ignore[attr-defined]


def _print_error(message: str) -> None:
    print(f"Error: {one_line(message)}", file=sys.stderr)


app = typer.Typer(
    cls=_ErrorBoundary,
    name="vizcli",
    help=(
        "See inside the models you read about: ResNet18 layer shapes, RoIPool/RoIAlign on "
        "real images, BERT pooler_output vectors, and universal-approximation experiments.\n\n"
        "Results go to stdout; progress, warnings and errors to stderr."
    ),
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"vizcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    context: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors (also VIZCLI_DEBUG=1)."),
) -> None:
    if debug:
        context.obj["debug"] = True
        warnings.simplefilter("default")


app.command(epilog=shapes_cli.EPILOG)(shapes_cli.shapes)
app.command(epilog=roi_cli.EPILOG)(roi_cli.roi)
app.command(epilog=detect_cli.EPILOG)(detect_cli.detect)
app.command(epilog=embed_cli.EPILOG)(embed_cli.embed)
app.command(epilog=approx_cli.EPILOG)(approx_cli.approx)
app.command(epilog=outputs_cli.INFO_EPILOG)(outputs_cli.info)
app.command(epilog=outputs_cli.VERIFY_EPILOG)(outputs_cli.verify)
app.command(epilog=outputs_cli.MERGE_EPILOG)(outputs_cli.merge)
app.command(epilog=outputs_cli.EXPORT_EPILOG)(outputs_cli.export)
app.command(epilog=search_cli.EPILOG)(search_cli.search)


def main() -> None:
    """The ``vizcli`` executable: run the app, then leave without tearing torch down.

    Once torch is loaded, the interpreter's module teardown takes 1–2 s on a small machine and does
    nothing a finished command needs; every output is already closed (atomically renamed) by then.
    So after flushing stdout/stderr and running the ``atexit`` handlers (which include pending
    ``weakref.finalize`` clean-ups such as temporary folders), the process exits directly.
    """
    import atexit

    try:
        app(prog_name="vizcli")
        code: int = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            print(done.code, file=sys.stderr)
            code = 1
    if "torch" not in sys.modules:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            signals.silence_stdout()
    atexit._run_exitfuncs()
    os._exit(code)
