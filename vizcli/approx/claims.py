"""The notes' universal-approximation claims, each run as a small experiment with a verdict.

Every claim is one function returning a ``Claim``: what the notes say, the setting, what was
measured and a verdict from thresholds stated in advance. ``run_claims`` runs them in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vizcli.approx.fitting import (
    chebyshev_fit,
    exact_abs_error,
    fit_network,
    interpolation_fit,
    make_target,
    taylor_fit,
)
from vizcli.approx.sawtooth import sawtooth_experiment


@dataclass
class Claim:
    claim: str  # as the notes state it (translated)
    setting: str
    measured: list[str]
    verdict: str  # "holds", "holds partly", "does not hold"
    thresholds: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "setting": self.setting, "measured": self.measured, "verdict": self.verdict,
                "thresholds": self.thresholds, "seconds": self.seconds}


HIGH_ACCURACY = 0.01  # max error taken to mean "high accuracy"
PARTLY = 0.1


def _grade(error: float) -> str:
    return "holds" if error <= HIGH_ACCURACY else ("holds partly" if error <= PARTLY else "does not hold")



def _claim_four_tanh_neurons(seed: int) -> Claim:
    """Claim 1: 4 tanh neurons and sin(2πx)."""
    started = time.perf_counter()
    target = make_target("sin(2*pi*x)", "-1,1")
    network = fit_network(target, 4, 1, "tanh", seed, restarts=6)
    polynomial = chebyshev_fit(target, network.params)
    taylor = taylor_fit(target, network.params)
    return Claim(
        claim="Only 4 tanh neurons fit sin(2πx) on [-1, 1] with high accuracy; a polynomial (Taylor) needs high order.",
        setting="1 hidden layer of 4 tanh units (13 parameters), best of 6 restarts; polynomials with 13 coefficients",
        measured=[f"4 tanh neurons: max error {network.max_error:.2e}, RMS {network.rms_error:.2e}",
                  f"Chebyshev least squares, degree 12: max error {polynomial.max_error:.2e}",
                  f"Taylor at 0, degree 12: max error {taylor.max_error:.2e}" if taylor else "Taylor: not defined"],
        verdict=_grade(network.max_error),
        thresholds=f"'high accuracy' = max error ≤ {HIGH_ACCURACY} (holds), ≤ {PARTLY} (holds partly)",
        seconds=time.perf_counter() - started,
        extra={"fits": [network, polynomial, taylor], "target": target},
    )


def _claim_relu_absolute_value(seed: int) -> Claim:
    """Claim 2: ReLU networks represent |x|."""
    started = time.perf_counter()
    target = make_target("abs(x)", "-1,1")
    network = fit_network(target, 2, 1, "relu", seed, restarts=4)
    polynomial = chebyshev_fit(target, network.params)
    exact = exact_abs_error()
    if exact <= 1e-12 and network.max_error <= HIGH_ACCURACY:
        verdict = "holds"
    elif exact <= 1e-12:
        verdict = "holds partly"
    else:
        verdict = "does not hold"
    return Claim(
        claim="ReLU networks approximate continuous but non-differentiable functions such as |x|; Taylor expansion cannot.",
        setting="1 hidden layer of 2 ReLU units (7 parameters), built as relu(x) + relu(−x) and trained from random starts; "
                "Chebyshev least squares with 7 coefficients",
        measured=[f"2 ReLU units built by hand: max error {exact:.1e}",
                  f"2 ReLU units trained: max error {network.max_error:.2e} ({network.pieces} linear pieces; the kink can "
                  "only be pinned between two training points)",
                  f"Chebyshev degree 6: max error {polynomial.max_error:.2e}",
                  "Taylor: not defined (|x| has no derivative at 0)"],
        verdict=verdict,
        thresholds=f"holds if the built network is exact (≤ 1e-12) and training reaches max error ≤ {HIGH_ACCURACY}",
        seconds=time.perf_counter() - started, extra={"fits": [network, polynomial], "target": target},
    )


def _claim_depth_makes_pieces(seed: int) -> Claim:
    """Claim 3: depth-L ReLU networks make 2^L pieces."""
    started = time.perf_counter()
    counts = [(depth, sawtooth_experiment(depth, max_width=0).pieces) for depth in range(1, 7)]
    deep = sawtooth_experiment(4, seed=seed)
    exact = all(pieces == 2**depth for depth, pieces in counts)
    shallow_ok = deep.smallest_width is not None and deep.smallest_width >= 2**4 / 2
    return Claim(
        claim="A depth-L ReLU network can have O(2^L) linear regions (Telgarsky 2016); a one-hidden-layer network needs "
              "exponentially many neurons for the same function.",
        setting="the tent map composed L times, width 2 (built, not trained), L = 1..6; for L = 4, one-hidden-layer "
                f"ReLU networks of width 2, 4, 8, … trained until max error ≤ {deep.threshold}",
        measured=[", ".join(f"L={d}: {p} pieces" for d, p in counts),
                  f"L=4 deep network: {deep.params} parameters; smallest shallow width reaching max error ≤ {deep.threshold}: "
                  f"{deep.smallest_width or 'none up to ' + str(deep.shallow[-1].params)}"
                  + (f" ({deep.shallow[-1].params} parameters)" if deep.smallest_width else "")],
        verdict="holds" if exact and shallow_ok else ("holds partly" if exact else "does not hold"),
        thresholds="holds if the built network has exactly 2^L pieces for every L and the shallow network needs at least "
                   "2^L / 2 units",
        seconds=time.perf_counter() - started, extra={"sawtooth": deep},
    )


def _claim_nested_sine(seed: int) -> Claim:
    """Claim 4: sin(2 sin(2 sin x))."""
    started = time.perf_counter()
    target = make_target("sin(2*sin(2*sin(x)))", "-pi,pi")
    shallow = []
    smallest = None
    for width in (4, 8, 16, 32, 64):
        fit = fit_network(target, width, 1, "tanh", seed, restarts=2)
        shallow.append(fit)
        if fit.max_error <= HIGH_ACCURACY:
            smallest = width
            break
    deep = fit_network(target, 4, 3, "tanh", seed, restarts=3)
    if smallest is not None and smallest < 100:
        verdict = "does not hold"
    elif deep.max_error <= HIGH_ACCURACY:
        verdict = "holds"
    else:
        verdict = "holds partly"
    return Claim(
        claim="sin(2 sin(2 sin x)) needs hundreds of neurons in one hidden layer, while 3 layers suffice.",
        setting="x in [-π, π]; one tanh layer of width 4, 8, … 64 until max error ≤ 0.01; 3 tanh layers of width 4",
        measured=["one layer: " + ", ".join(f"{w} neurons {f.max_error:.1e}" for f, w in zip(shallow, (4, 8, 16, 32, 64))),
                  f"3 layers of 4 ({deep.params} parameters): max error {deep.max_error:.2e}",
                  f"smallest single layer reaching ≤ {HIGH_ACCURACY}: {smallest or 'none up to 64'} neurons"],
        verdict=verdict,
        thresholds=f"'hundreds' is refuted if one layer of < 100 neurons reaches max error ≤ {HIGH_ACCURACY}",
        seconds=time.perf_counter() - started, extra={"fits": shallow + [deep], "target": target},
    )


def _claim_runge_phenomenon(seed: int) -> Claim:
    """Claim 5: Runge's phenomenon."""
    started = time.perf_counter()
    target = make_target("1/(1+25*x^2)", "-1,1")
    degrees = (5, 10, 15, 20)
    equispaced = [interpolation_fit(target, d, "equispaced") for d in degrees]
    chebyshev_nodes = [interpolation_fit(target, d, "chebyshev") for d in degrees]
    grows = all(b.max_error > a.max_error for a, b in zip(equispaced[1:], equispaced[2:])) and equispaced[-1].max_error > 1
    converges = chebyshev_nodes[-1].max_error < chebyshev_nodes[0].max_error
    return Claim(
        claim="High-degree polynomials oscillate (Runge's phenomenon).",
        setting="Runge's function 1/(1+25x²) on [-1, 1], interpolation of degree 5..20 at equispaced vs Chebyshev nodes",
        measured=["equispaced: " + ", ".join(f"deg {d}: {f.max_error:.2e}" for d, f in zip(degrees, equispaced)),
                  "Chebyshev nodes: " + ", ".join(f"deg {d}: {f.max_error:.2e}" for d, f in zip(degrees, chebyshev_nodes))],
        verdict="holds partly" if grows and converges else ("holds" if grows else "does not hold"),
        thresholds="holds if the equispaced error grows with degree beyond 1; 'partly' when well-chosen (Chebyshev) "
                   "nodes make the same high degree converge — the oscillation comes from the nodes, not the degree",
        seconds=time.perf_counter() - started, extra={"fits": equispaced + chebyshev_nodes, "target": target},
    )


_CLAIMS: list[tuple[str, Callable[[int], Claim]]] = [
    ("claim 1: 4 tanh neurons and sin(2πx)", _claim_four_tanh_neurons),
    ("claim 2: ReLU networks represent |x|", _claim_relu_absolute_value),
    ("claim 3: depth-L ReLU networks make 2^L pieces", _claim_depth_makes_pieces),
    ("claim 4: sin(2 sin(2 sin x))", _claim_nested_sine),
    ("claim 5: Runge's phenomenon", _claim_runge_phenomenon),
]


def run_claims(seed: int = 0, progress: Callable[[str], None] | None = None) -> list[Claim]:
    """Each claim of the notes as a small experiment, with a verdict from stated thresholds."""
    results = []
    for title, run_claim in _CLAIMS:
        if progress is not None:
            progress(title)
        results.append(run_claim(seed))
    return results
