"""Depth against width (Telgarsky): the tent map composed L times has 2^L linear pieces.

``sawtooth_network`` builds it with width 2; ``sawtooth_experiment`` counts its pieces and
trains one-hidden-layer ReLU networks of growing width until they match it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vizcli.approx.expr import parse_expression
from vizcli.approx.fitting import Fit, Target, count_linear_pieces, fit_network

SAWTOOTH_GRID_POINTS = 200_001  # dense enough to see every one of 2^10 pieces


def sawtooth_network(depth: int):
    """The depth-L composition of the tent map t(x) = 2·relu(x) − 4·relu(x − ½) on [0, 1]:
    width 2, built (not trained); it has 2^L linear pieces."""
    import torch
    import torch.nn as nn

    layers: list[Any] = []
    for index in range(depth):
        linear = nn.Linear(1 if index == 0 else 2, 2).double()
        with torch.no_grad():
            if index == 0:
                linear.weight.copy_(torch.tensor([[1.0], [1.0]]))
            else:  # feed the previous tent 2·h1 − 4·h2 into both units
                linear.weight.copy_(torch.tensor([[2.0, -4.0], [2.0, -4.0]]))
            linear.bias.copy_(torch.tensor([0.0, -0.5]))
        layers += [linear, nn.ReLU()]
    output = nn.Linear(2, 1).double()
    with torch.no_grad():
        output.weight.copy_(torch.tensor([[2.0, -4.0]]))
        output.bias.zero_()
    layers.append(output)
    return nn.Sequential(*layers)


@dataclass
class SawtoothResult:
    depth: int
    pieces: int
    params: int
    shallow: list[Fit]  # one-hidden-layer ReLU fits of growing width
    threshold: float
    smallest_width: int | None
    curve: Any = None


def sawtooth_experiment(depth: int, threshold: float = 0.05, seed: int = 0, restarts: int = 2,
                        max_width: int | None = None) -> SawtoothResult:
    import torch

    network = sawtooth_network(depth)
    grid = torch.linspace(0, 1, SAWTOOTH_GRID_POINTS, dtype=torch.float64)
    with torch.no_grad():
        curve = network(grid[:, None])[:, 0]
    pieces = count_linear_pieces(curve.numpy(), grid.numpy())
    params = sum(p.numel() for p in network.parameters())
    # the same function as a target for shallow networks
    target = Target(parse_expression("x"), (0.0, 1.0))
    target.values = lambda x: network(x.reshape(-1, 1)).reshape(x.shape)  # type: ignore[method-assign]
    shallow, smallest = [], None
    width = 2
    limit = 4 * 2**depth if max_width is None else max_width
    while width <= limit:
        fit = fit_network(target, width, 1, "relu", seed=seed, restarts=restarts, adam_steps=2500, lbfgs_steps=600)
        fit.label = f"relu net 1×{width}"
        shallow.append(fit)
        if fit.max_error <= threshold:
            smallest = width
            break
        width *= 2
    return SawtoothResult(depth=depth, pieces=pieces, params=params, shallow=shallow, threshold=threshold,
                          smallest_width=smallest, curve=curve.numpy())


