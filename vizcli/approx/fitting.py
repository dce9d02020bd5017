"""Universal-approximation experiments: small networks against polynomials, on a CPU, in seconds.

``fit_network`` trains a fully connected network (Adam, then L-BFGS, full batch, float64,
best of several seeded restarts). ``chebyshev_fit`` and ``taylor_fit`` give the polynomial
side with the same number of free parameters. Errors are always measured on a dense grid
that is not the training set. ``run_claims`` turns the notes' claims into experiments.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vizcli.approx.expr import Expression, parse_expression
from vizcli.common.errors import BadInput, RunFailure

ACTIVATIONS = ("tanh", "relu", "sigmoid")
TRAIN_POINTS = 2000
GRID_POINTS = 10_001
MAX_TAYLOR_DEGREE = 30
MAX_POLY_DEGREE = 400
POLE_RATIO = 1e4  # a target this many times larger than its typical size is warned about


def parse_domain(text: str) -> tuple[float, float]:
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2:
        raise BadInput("give two numbers A,B, e.g. -1,1", parameter="domain", value=text)
    try:
        low, high = (float(parse_expression(part, "domain").evaluate(_scalar())) for part in parts)
    except BadInput:
        raise BadInput("A and B must be numbers (pi allowed), e.g. -1,1 or -pi,pi", parameter="domain", value=text) from None
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise BadInput("need finite A < B", parameter="domain", value=text)
    return low, high


def _scalar():
    import torch

    return torch.zeros((), dtype=torch.float64)


def parse_int_list(text: str, parameter: str, low: int, high: int) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput("whole numbers separated by commas, e.g. 1,2,4,8", parameter=parameter, value=text) from None
    if not values:
        raise BadInput("give at least one number", parameter=parameter, value=text)
    for value in values:
        if not low <= value <= high:
            raise BadInput(f"each value must be between {low} and {high}", parameter=parameter, value=text)
    return values


@dataclass
class Target:
    expression: Expression
    domain: tuple[float, float]
    warnings: list[str] = field(default_factory=list)  # what a user should know about the target (poles)

    def grid(self, points: int = GRID_POINTS):
        import torch

        return torch.linspace(self.domain[0], self.domain[1], points, dtype=torch.float64)

    def values(self, x):
        return self.expression.evaluate(x)


def make_target(text: str, domain: str) -> Target:
    """Parse and check that the target is finite everywhere on the evaluation grid."""
    import torch

    target = Target(parse_expression(text), parse_domain(domain))
    x = target.grid()
    with torch.no_grad():
        y = target.values(x)
    bad = ~torch.isfinite(y)
    if bool(bad.any()):
        where = float(x[bad][0])
        raise BadInput(
            f"not finite at x = {where:g} on [{target.domain[0]:g}, {target.domain[1]:g}]; choose a domain where it is defined",
            parameter="target",
            value=text,
        )
    magnitude = y.abs()
    peak, typical = float(magnitude.max()), float(magnitude.median())
    if peak > POLE_RATIO * max(typical, 1.0):
        where = float(x[int(magnitude.argmax())])
        target.warnings.append(
            f"target={text!r} reaches {peak:.3g} near x = {where:.4g} (typical size {typical:.3g}): a pole? "
            "fits and errors will be dominated by it; choose a domain away from it"
        )
    return target


# ---------------------------------------------------------------- networks


def build_network(width: int, depth: int, activation: str):
    import torch.nn as nn

    layers: list[Any] = []
    size = 1
    make = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
    for _ in range(depth):
        layers += [nn.Linear(size, width), make()]
        size = width
    layers.append(nn.Linear(size, 1))
    return nn.Sequential(*layers).double()


def parameter_count(width: int, depth: int) -> int:
    return (1 * width + width) + (depth - 1) * (width * width + width) + (width + 1)


@dataclass
class Fit:
    label: str
    kind: str  # "network", "chebyshev", "taylor", "interpolation"
    params: int
    max_error: float
    rms_error: float
    seconds: float = 0.0
    pieces: int | None = None
    curve: Any = None  # values on the evaluation grid (numpy)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "kind": self.kind, "params": self.params, "max_error": self.max_error,
                "rms_error": self.rms_error, "seconds": self.seconds, "pieces": self.pieces, "note": self.note}


def _errors(curve, truth) -> tuple[float, float]:
    import torch

    difference = (curve - truth).abs()
    return float(difference.max()), float(torch.sqrt((difference**2).mean()))


def _scaled(x, domain):
    low, high = domain
    return (2 * x - (low + high)) / (high - low)  # the network sees [-1, 1]


def fit_network(target: Target, width: int, depth: int, activation: str = "tanh", seed: int = 0, restarts: int = 3,
                adam_steps: int = 1500, lbfgs_steps: int = 1500) -> Fit:
    """Train ``depth`` hidden layers of ``width`` units; keep the best of ``restarts`` by training loss."""
    import torch

    if activation not in ACTIVATIONS:
        raise BadInput("use tanh, relu or sigmoid", parameter="activation", value=activation)
    started = time.perf_counter()
    low, high = target.domain
    # training points: Chebyshev-spaced (denser at the ends) plus uniform; never the evaluation grid
    k = torch.arange(TRAIN_POINTS // 2, dtype=torch.float64)
    chebyshev = torch.cos(math.pi * (k + 0.5) / (TRAIN_POINTS // 2))
    uniform = torch.linspace(-1, 1, TRAIN_POINTS // 2 + 2, dtype=torch.float64)[1:-1]
    train_scaled = torch.cat([chebyshev, uniform]).sort().values
    train_x = (train_scaled * (high - low) + (low + high)) / 2
    with torch.no_grad():
        train_y = target.values(train_x)
    scale = float(train_y.abs().max()) or 1.0
    best, best_loss = None, math.inf
    with torch.enable_grad():
        for restart in range(restarts):
            torch.manual_seed(seed * 1000 + restart)
            network = build_network(width, depth, activation)
            inputs, goal = train_scaled[:, None], (train_y / scale)[:, None]
            optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
            for _ in range(adam_steps):
                optimizer.zero_grad()
                loss = ((network(inputs) - goal) ** 2).mean()
                loss.backward()
                optimizer.step()
            lbfgs = torch.optim.LBFGS(network.parameters(), lr=1, max_iter=lbfgs_steps, tolerance_grad=1e-12,
                                      tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

            def closure(lbfgs=lbfgs, network=network, inputs=inputs, goal=goal):  # bound now, called by step below
                lbfgs.zero_grad()
                value = ((network(inputs) - goal) ** 2).mean()
                value.backward()
                return value

            lbfgs.step(closure)
            with torch.no_grad():
                final = float(((network(inputs) - goal) ** 2).mean())
            if math.isfinite(final) and final < best_loss:
                best, best_loss = network, final
    if best is None:
        raise RunFailure(f"every one of {restarts} trainings diverged; try another seed or a smaller width")
    grid = target.grid()
    with torch.no_grad():
        curve = best(_scaled(grid, target.domain)[:, None])[:, 0] * scale
        truth = target.values(grid)
    max_error, rms_error = _errors(curve, truth)
    fit = Fit(label=f"{activation} net {depth}×{width}", kind="network", params=parameter_count(width, depth),
              max_error=max_error, rms_error=rms_error, seconds=time.perf_counter() - started, curve=curve.numpy())
    if activation == "relu":
        fit.pieces = count_linear_pieces(fit.curve, grid.numpy())
    return fit


def count_linear_pieces(values, x, relative_tolerance: float = 1e-6) -> int:
    """Linear pieces of a piecewise-linear function sampled on a uniform grid ``x``.

    A kink is where the slope between neighbouring samples changes by more than the
    tolerance (relative to the largest slope); neighbouring flagged steps are one kink.
    """
    import numpy as np

    values, x = np.asarray(values, dtype=np.float64), np.asarray(x, dtype=np.float64)
    slopes = np.diff(values) / np.diff(x)
    change = np.abs(np.diff(slopes))
    threshold = relative_tolerance * max(1.0, float(np.abs(slopes).max()))
    flagged = change > threshold
    kinks = int(flagged[0]) + int(np.count_nonzero(flagged[1:] & ~flagged[:-1])) if flagged.size else 0
    return kinks + 1


# ---------------------------------------------------------------- polynomials


def _chebyshev_nodes(count: int):
    import numpy as np

    return np.cos(np.pi * (np.arange(count) + 0.5) / count)  # on [-1, 1], denser at the ends


def _chebyshev_series(target: Target, points, degree: int):
    """Fit a degree-``degree`` Chebyshev series to the target at ``points`` (in [-1, 1]) by least
    squares (interpolation when there are degree + 1 points); returns (curve on the grid, max, RMS)."""
    import torch
    from numpy.polynomial import chebyshev

    low, high = target.domain
    with torch.no_grad():
        values = target.values(torch.from_numpy((points * (high - low) + low + high) / 2)).numpy()
        coefficients = chebyshev.chebfit(points, values, degree)
        grid = target.grid()
        curve = chebyshev.chebval(_scaled(grid, target.domain).numpy(), coefficients)
        max_error, rms_error = _errors(torch.from_numpy(curve), target.values(grid))
    return curve, max_error, rms_error


def chebyshev_fit(target: Target, params: int) -> Fit:
    """Least squares in the Chebyshev basis with ``params`` coefficients (degree params − 1)."""
    degree = min(params - 1, MAX_POLY_DEGREE)
    started = time.perf_counter()
    curve, max_error, rms_error = _chebyshev_series(target, _chebyshev_nodes(max(4 * (degree + 1), TRAIN_POINTS)), degree)
    note = f"degree capped at {MAX_POLY_DEGREE}" if degree < params - 1 else ""
    return Fit(label=f"Chebyshev LS degree {degree}", kind="chebyshev", params=degree + 1, max_error=max_error,
               rms_error=rms_error, seconds=time.perf_counter() - started, curve=curve, note=note)


def taylor_fit(target: Target, params: int) -> Fit | None:
    """The Taylor polynomial of degree params − 1 at the domain's centre (autograd derivatives).

    None when the target is not built from smooth functions (abs, relu, sign, floor).
    """
    import torch

    if not target.expression.smooth:
        return None
    degree = min(params - 1, MAX_TAYLOR_DEGREE)
    started = time.perf_counter()
    centre = torch.tensor((target.domain[0] + target.domain[1]) / 2, dtype=torch.float64, requires_grad=True)
    coefficients = []
    with torch.enable_grad():
        value = target.values(centre)
        for order in range(degree + 1):
            coefficients.append(float(value.detach()) / math.factorial(order))
            if order == degree:
                break
            if not value.requires_grad:
                value = torch.zeros((), dtype=torch.float64, requires_grad=True)
            (value,) = torch.autograd.grad(value, centre, create_graph=True, allow_unused=True)
            if value is None:
                value = torch.zeros((), dtype=torch.float64, requires_grad=True)
    grid = target.grid()
    offset = grid - float(centre.detach())
    curve = torch.zeros_like(grid)
    for order in reversed(range(len(coefficients))):  # Horner
        curve = curve * offset + coefficients[order]
    with torch.no_grad():
        truth = target.values(grid)
    max_error, rms_error = _errors(curve, truth)
    note = f"degree capped at {MAX_TAYLOR_DEGREE}" if degree < params - 1 else ""
    return Fit(label=f"Taylor degree {degree} at {float(centre.detach()):g}", kind="taylor", params=degree + 1,
               max_error=max_error, rms_error=rms_error, seconds=time.perf_counter() - started, curve=curve.numpy(), note=note)


def interpolation_fit(target: Target, degree: int, nodes: str) -> Fit:
    """Interpolation of degree ``degree`` at equispaced or Chebyshev nodes (Runge's phenomenon)."""
    import numpy as np

    points = np.linspace(-1, 1, degree + 1) if nodes == "equispaced" else _chebyshev_nodes(degree + 1)
    curve, max_error, rms_error = _chebyshev_series(target, points, degree)
    return Fit(label=f"interpolation degree {degree}, {nodes} nodes", kind="interpolation", params=degree + 1,
               max_error=max_error, rms_error=rms_error, curve=curve)


def exact_abs_error() -> float:
    """Max error of the hand-built 2-unit ReLU network relu(x) + relu(−x) against |x| on [-1, 1]."""
    import torch

    network = build_network(2, 1, "relu")
    with torch.no_grad():
        network[0].weight.copy_(torch.tensor([[1.0], [-1.0]], dtype=torch.float64))
        network[0].bias.zero_()
        network[2].weight.copy_(torch.tensor([[1.0, 1.0]], dtype=torch.float64))
        network[2].bias.zero_()
        grid = torch.linspace(-1, 1, GRID_POINTS, dtype=torch.float64)
        return float((network(grid[:, None])[:, 0] - grid.abs()).abs().max())


# ---------------------------------------------------------------- sweeps


@dataclass
class SweepRow:
    width: int
    depth: int
    network: Fit
    chebyshev: Fit
    taylor: Fit | None


def sweep(target: Target, widths: list[int], depths: list[int], activation: str, seed: int, restarts: int,
          progress: Callable[[str], None] | None = None) -> list[SweepRow]:
    rows = []
    for depth in depths:
        for width in widths:
            if progress:
                progress(f"fitting {activation} {depth}×{width}")
            network = fit_network(target, width, depth, activation, seed, restarts)
            rows.append(SweepRow(width, depth, network, chebyshev_fit(target, network.params), taylor_fit(target, network.params)))
    return rows
