"""``vizcli approx``: parse the flags, run the claims, a sawtooth or a sweep, and show it."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.common.options import Activation, ApproxFormat, OutputOption, PlotOption, ThreadsOption

EPILOG = (
    "Examples:\n\n"
    "  vizcli approx --claims                     # each claim of the notes as an experiment, with a verdict\n\n"
    "  vizcli approx --width 1,2,4,8 --plot fit.png\n\n"
    "  vizcli approx --target 'abs(x)' --activation relu --width 2\n\n"
    "  vizcli approx --sawtooth 4\n\n"
    "  vizcli approx --target '1/(1+25*x^2)' --runge\n\n"
    "EXPR uses x, numbers, pi, e, + - * / ^ (or **), parentheses and sin cos tan tanh exp log sqrt "
    "abs relu sign floor; it is parsed by vizcli's own grammar, never eval'd."
)

FORMAT_BY_EXTENSION = {"json": "json", "csv": "csv", "txt": "table"}
MAX_RESTARTS = 50
MAX_WIDTH = 256
MAX_DEPTH = 8
MAX_SAWTOOTH_DEPTH = 10
RUNGE_DEGREES = (5, 10, 15, 20)
PLOTTED_FITS = 8  # more curves than this make the picture unreadable


def approx(
    target: Annotated[str, typer.Option("--target", help="The function to approximate (see below).")] = "sin(2*pi*x)",
    domain: Annotated[str, typer.Option("--domain", help="A,B: the interval (pi allowed, e.g. -pi,pi).")] = "-1,1",
    activation: Annotated[Activation, typer.Option("--activation", help="Hidden-unit nonlinearity.")] = Activation.tanh,
    width: Annotated[str, typer.Option("--width", help="Hidden units per layer; a list sweeps (1,2,4,8).")] = "4",
    depth: Annotated[str, typer.Option("--depth", help="Hidden layers; a list sweeps (1,2,3).")] = "1",
    seed: Annotated[int, typer.Option("--seed", help="Seed: fits are deterministic for a given seed.")] = 0,
    restarts: Annotated[int, typer.Option("--restarts", help="Keep the best of this many seeded trainings.")] = 3,
    runge: Annotated[
        bool, typer.Option("--runge", help="Add equispaced vs Chebyshev-node interpolation of growing degree.")
    ] = False,
    sawtooth: Annotated[
        int | None, typer.Option("--sawtooth", help="Build the depth-L tent-map network and compare shallow ones.")
    ] = None,
    claims: Annotated[
        bool, typer.Option("--claims", help="Run every claim of the notes as an experiment and print a report.")
    ] = False,
    plot: PlotOption = None,
    output_format: Annotated[
        ApproxFormat | None,
        typer.Option("--format", "-f", case_sensitive=False, help="What to print (default: from -o's extension, else table)."),
    ] = None,
    output: OutputOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Test the notes' universal-approximation claims with small networks vs polynomials."""
    import sys

    from vizcli.common.console import info
    from vizcli.common.errors import BadInput
    from vizcli.common.files import check_not_an_input, check_writable, choose_format, format_for_path

    if restarts < 1 or restarts > MAX_RESTARTS:
        raise BadInput(f"use 1..{MAX_RESTARTS}", parameter="restarts", value=restarts)
    if sawtooth is not None and not 1 <= sawtooth <= MAX_SAWTOOTH_DEPTH:
        raise BadInput(f"use a depth of 1..{MAX_SAWTOOTH_DEPTH}", parameter="sawtooth", value=sawtooth)
    fmt = choose_format(output, output_format.value if output_format else None, FORMAT_BY_EXTENSION, "table")
    check_writable(output)
    if plot:
        format_for_path(plot, ("png",), parameter="plot")
        check_writable(plot, parameter="plot")
        check_not_an_input(plot, [output], parameter="plot")
    from vizcli.approx.fitting import parse_int_list
    from vizcli.common.console import warn
    from vizcli.common.runtime import set_threads

    widths = parse_int_list(width, "width", 1, MAX_WIDTH)
    depths = parse_int_list(depth, "depth", 1, MAX_DEPTH)
    set_threads(threads, warn)
    progress = info if sys.stderr.isatty() else None
    if claims:
        _claims(seed, fmt, output, plot, info)  # minutes of work: always say what runs, terminal or not
    elif sawtooth is not None:
        _sawtooth(sawtooth, seed, fmt, output)
        plot = None  # the sawtooth experiment has no picture
    else:
        _sweep(target, domain, widths, depths, activation.value, seed, restarts, runge, fmt, output,
               plot, progress)
    if plot:
        info(f"saved picture to {plot}")


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
