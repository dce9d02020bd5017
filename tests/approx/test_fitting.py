"""approx core: fits, polynomials, linear pieces, the claims report."""

import numpy as np
import pytest
import torch

from vizcli.approx.fitting import chebyshev_fit, count_linear_pieces, fit_network, make_target, parameter_count, taylor_fit
from vizcli.approx.sawtooth import sawtooth_network
from vizcli.common.errors import BadInput


def test_fits_are_reproducible_for_a_seed():
    target = make_target("sin(2*pi*x)", "-1,1")
    first = fit_network(target, 4, 1, "tanh", seed=3, restarts=1, adam_steps=300, lbfgs_steps=100)
    second = fit_network(target, 4, 1, "tanh", seed=3, restarts=1, adam_steps=300, lbfgs_steps=100)
    assert first.max_error == second.max_error and np.array_equal(first.curve, second.curve)
    assert first.params == parameter_count(4, 1) == 13


def test_abs_by_two_relu_units_near_zero_error():
    fit = fit_network(make_target("abs(x)", "-1,1"), 2, 1, "relu", seed=0, restarts=4)
    assert fit.max_error <= 2e-3
    assert fit.pieces == 2 or fit.pieces == 3  # a third piece only if a unit's kink lands inside the domain


@pytest.mark.parametrize("depth", range(1, 7))
def test_tent_map_network_has_2_to_the_L_pieces(depth):
    network = sawtooth_network(depth)
    grid = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    with torch.no_grad():
        values = network(grid[:, None])[:, 0].numpy()
    assert count_linear_pieces(values, grid.numpy()) == 2**depth
    assert sum(p.numel() for p in network.parameters()) == 6 * depth + 3 - (2 if depth >= 1 else 0)


def test_piece_counter_on_known_functions():
    x = np.linspace(-1, 1, 10_001)
    assert count_linear_pieces(2 * x + 1, x) == 1
    assert count_linear_pieces(np.abs(x - 0.3), x) == 2
    assert count_linear_pieces(np.maximum(0, x) - 2 * np.maximum(0, x - 0.5) + np.maximum(0, x + 0.5), x) == 4


def test_chebyshev_least_squares_matches_numpy():
    from vizcli.approx.fitting import TRAIN_POINTS

    target = make_target("exp(x)*sin(3*x)", "-2,1")
    fit = chebyshev_fit(target, 9)
    count = max(4 * 9, TRAIN_POINTS)
    nodes = np.cos(np.pi * (np.arange(count) + 0.5) / count)
    points = (nodes * 3 - 1) / 2  # the same sample points, mapped onto [-2, 1]
    reference = np.polynomial.Chebyshev.fit(points, np.exp(points) * np.sin(3 * points), 8, domain=[-2, 1])
    grid = target.grid().numpy()
    assert np.abs(fit.curve - reference(grid)).max() < 1e-9
    assert fit.max_error == pytest.approx(np.abs(reference(grid) - np.exp(grid) * np.sin(3 * grid)).max(), rel=1e-6)


def test_taylor_matches_the_series():
    fit = taylor_fit(make_target("sin(x)", "-1,1"), 6)  # degree 5: x - x^3/6 + x^5/120
    grid = np.linspace(-1, 1, 10_001)
    series = grid - grid**3 / 6 + grid**5 / 120
    assert np.abs(fit.curve - series).max() < 1e-12
    assert taylor_fit(make_target("abs(x)", "-1,1"), 5) is None


def test_target_not_finite_names_where():
    with pytest.raises(BadInput, match=r"not finite at x = -1"):
        make_target("log(x)", "-1,1")
    with pytest.raises(BadInput, match="domain="):
        make_target("x", "1,-1")
