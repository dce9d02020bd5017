"""``vizcli approx``: parse the flags, run the claims, a sawtooth or a sweep, and show it."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.options import Activation, ApproxFormat, ThreadsOption

EPILOG = (
    "Examples:\n\n"
    "  vizcli approx --claims                     # each claim of the study notes as an experiment, with a verdict\n\n"
    "  vizcli approx --width 1,2,4,8 --plot fit.png\n\n"
    "  vizcli approx --target 'abs(x)' --activation relu --width 2\n\n"
    "  vizcli approx --sawtooth 4\n\n"
    "  vizcli approx --target '1/(1+25*x^2)' --runge\n\n"
    "EXPR uses x, numbers, pi, e, + - * / ^ (or **), parentheses and sin cos tan tanh exp log sqrt "
    "abs relu sign floor; it is parsed by vizcli's own grammar, never eval'd.\n\n"
    "The notes: the study notes on ResNet18, RoI pooling, BERT's pooler and universal approximation that vizcli checks; "
    "their approximation claims are listed in docs/notes.md."
)

FORMAT_BY_EXTENSION = {"json": "json", "csv": "csv", "txt": "table"}
MAX_RESTARTS = 50
MAX_WIDTH = 256
MAX_DEPTH = 8
MAX_SAWTOOTH_DEPTH = 10
RUNGE_DEGREES = (5, 10, 15, 20)
PLOTTED_FITS = 8  # more curves than this make the picture unreadable


TARGET, NETWORK, EXPERIMENT, OUTPUT = "Target", "Network", "Experiment", "Output"
SWEEP_DEFAULTS: dict[str, object] = {"target": "sin(2*pi*x)", "domain": "-1,1", "activation": Activation.tanh, "width": "4", "depth": "1",
                  "restarts": 3, "runge": False}


def approx(
    target: Annotated[str, typer.Option("--target", help="The function to approximate (see below).",
                                        rich_help_panel=TARGET)] = "sin(2*pi*x)",
    domain: Annotated[str, typer.Option("--domain", help="A,B: the interval (pi allowed, e.g. -pi,pi).",
                                        rich_help_panel=TARGET)] = "-1,1",
    activation: Annotated[Activation, typer.Option("--activation", help="Hidden-unit nonlinearity.",
                                                   rich_help_panel=NETWORK)] = Activation.tanh,
    width: Annotated[str, typer.Option("--width", help="Hidden units per layer; a list sweeps (1,2,4,8).",
                                       rich_help_panel=NETWORK)] = "4",
    depth: Annotated[str, typer.Option("--depth", help="Hidden layers; a list sweeps (1,2,3).",
                                       rich_help_panel=NETWORK)] = "1",
    restarts: Annotated[int, typer.Option("--restarts", help="Keep the best of this many seeded trainings.",
                                          rich_help_panel=NETWORK)] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed: fits are deterministic for a given seed.", rich_help_panel=NETWORK)] = 0,
    runge: Annotated[bool, typer.Option("--runge", help="Add equispaced vs Chebyshev-node interpolation of growing degree.",
                                        rich_help_panel=EXPERIMENT)] = False,
    sawtooth: Annotated[int | None, typer.Option("--sawtooth", help="Instead of a fit: build the depth-L tent-map network and "
                                                 "compare shallow ones.", rich_help_panel=EXPERIMENT)] = None,
    claims: Annotated[bool, typer.Option("--claims", help="Instead of a fit: run every claim of the study notes (on universal "
                                         "approximation) as an experiment and print a report.", rich_help_panel=EXPERIMENT)] = False,
    plot: Annotated[str | None, typer.Option("--plot", help="Draw the fits to this PNG file.", rich_help_panel=OUTPUT)] = None,
    stdout_format: Annotated[ApproxFormat | None, typer.Option("--format", "-f", case_sensitive=False, rich_help_panel=OUTPUT,
                                                               help="What stdout shows (default table).")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", rich_help_panel=OUTPUT, help="Write the result to FILE instead "
                                               "of stdout (atomically); its format from the suffix: .txt, .json, .csv.")] = None,
    output_format: Annotated[ApproxFormat | None, typer.Option("--output-format", case_sensitive=False, rich_help_panel=OUTPUT,
                                                               help="The format of -o where its suffix names none.")] = None,
    threads: ThreadsOption = None,
) -> None:
    """Test the universal-approximation claims of the study notes with small networks against polynomials."""
    import sys

    from vizcli.common.console import info, warn
    from vizcli.common.runtime import set_threads

    given = {"target": target, "domain": domain, "activation": activation, "width": width, "depth": depth, "restarts": restarts,
             "runge": runge}
    fmt = _check(given, sawtooth, claims, plot, stdout_format, output, output_format)
    widths, depths = _sizes(width, depth)
    set_threads(threads, warn)
    if claims:
        _claims(seed, fmt, output, plot, info)  # minutes of work: always say what runs, terminal or not
    elif sawtooth is not None:
        _sawtooth(sawtooth, seed, fmt, output)
    else:
        _sweep(target, domain, widths, depths, activation.value, seed, restarts, runge, fmt, output, plot,
               info if sys.stderr.isatty() else None)
    if output:
        info(f"wrote the {fmt} to {output}")
    if plot:
        info(f"wrote the picture to {plot}")


def _check(given: dict[str, object], sawtooth: int | None, claims: bool, plot: str | None, stdout_format: ApproxFormat | None,
           output: str | None, output_format: ApproxFormat | None) -> str:
    """Every flag checked before any training; returns the format of what is written (stdout or -o)."""
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path

    restarts = given["restarts"]
    if not isinstance(restarts, int) or not 1 <= restarts <= MAX_RESTARTS:
        raise BadInput(f"use 1..{MAX_RESTARTS}", parameter="restarts", value=restarts)
    if sawtooth is not None and not 1 <= sawtooth <= MAX_SAWTOOTH_DEPTH:
        raise BadInput(f"use a depth of 1..{MAX_SAWTOOTH_DEPTH}", parameter="sawtooth", value=sawtooth)
    if claims and sawtooth is not None:
        raise BadInput("give --claims or --sawtooth L, not both: each is its own experiment")
    if claims or sawtooth is not None:
        mode = "--claims" if claims else "--sawtooth"
        changed = [name for name, value in given.items() if value != SWEEP_DEFAULTS[name]]
        if changed:
            raise BadInput(f"--{changed[0]} sets up a fit, which {mode} does not run (it has its own networks); drop it")
        if sawtooth is not None and plot:
            raise BadInput("--sawtooth draws no picture; drop --plot")
    if output and stdout_format is not None:
        raise BadInput(f"--format {stdout_format.value} is what stdout shows, and -o {output} takes stdout's place: its format "
                       "comes from its suffix (.txt, .json, .csv) or --output-format; drop --format")
    if output_format is not None and not output:
        raise BadInput("--output-format is the format of -o FILE; give -o, or use --format for stdout")
    fmt = (choose_format(output, output_format.value if output_format else None, FORMAT_BY_EXTENSION, "table") if output
           else (stdout_format.value if stdout_format else "table"))
    if output and output_format is None:
        format_for_path(output, tuple(FORMAT_BY_EXTENSION))
    check_writable(output)
    if plot:
        format_for_path(plot, ("png",), parameter="plot")
        check_writable(plot, parameter="plot")
        check_not_an_input(plot, [output], parameter="plot")
    return fmt


def _sizes(width: str, depth: str) -> tuple[list[int], list[int]]:
    from vizcli.approx.fitting import parse_int_list

    return parse_int_list(width, "width", 1, MAX_WIDTH), parse_int_list(depth, "depth", 1, MAX_DEPTH)


def _claims(seed, fmt, output, plot, progress) -> None:
    from vizcli.approx.claims import run_claims
    from vizcli.approx.plot import plot_fits
    from vizcli.approx.render import write_claims

    results = run_claims(seed, progress=progress)
    write_claims(results, fmt, output)
    if plot:
        first = results[0]
        plot_fits(first.extra["target"], first.extra["fits"], plot)


def _sawtooth(depth, seed, fmt, output) -> None:
    from vizcli.approx.render import write_sawtooth
    from vizcli.approx.sawtooth import sawtooth_experiment

    write_sawtooth(sawtooth_experiment(depth, seed=seed), fmt, output)


def _sweep(target, domain, widths, depths, activation, seed, restarts, runge, fmt, output, plot, progress) -> None:
    from vizcli.approx.fitting import interpolation_fit, make_target, sweep
    from vizcli.approx.plot import plot_fits
    from vizcli.approx.render import write_sweep
    from vizcli.common.console import warn

    problem = make_target(target, domain)
    for message in problem.warnings:
        warn(message)
    rows = sweep(problem, widths, depths, activation, seed, restarts, progress=progress)
    extra = []
    if runge:
        for degree in RUNGE_DEGREES:
            extra += [interpolation_fit(problem, degree, "equispaced"), interpolation_fit(problem, degree, "chebyshev")]
    write_sweep(problem, target, rows, extra, fmt, output)
    if plot:
        fits = [fit for row in rows for fit in (row.network, row.chebyshev) if fit is not None][:PLOTTED_FITS] + extra[-2:]
        plot_fits(problem, fits, plot, rows)
