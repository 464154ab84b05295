"""MM-LUT interpolation: exact at lattice points, linear between them, flat top bin."""

import numpy as np
import pytest
import torch

from lutfuse_ros.families.mmlut.model import MMLUT
from lutfuse_ros.families.mmlut.lattice import axis_scale, quadrilinear_lookup


@pytest.fixture
def table():
    torch.manual_seed(0)
    return torch.randn(6, 6, 6, 6)


def test_exact_at_lattice_points(table):
    points = torch.randint(0, 6, (4, 200)).float()
    values = quadrilinear_lookup(table, tuple(points))
    expected = table[tuple(points.long())]
    assert torch.allclose(values, expected, atol=1e-6)


def test_linear_between_neighbours_along_each_axis(table):
    base = torch.tensor([1.0, 2.0, 3.0, 4.0])
    for axis in range(4):
        fractions = torch.linspace(0, 1, 11)
        coords = [base[k].expand(11).clone() for k in range(4)]
        coords[axis] = base[axis] + fractions
        values = quadrilinear_lookup(table, tuple(coords))
        low = table[1, 2, 3, 4]
        index = [1, 2, 3, 4]
        index[axis] += 1
        high = table[tuple(index)]
        assert torch.allclose(values, low + fractions * (high - low), atol=1e-5)


def test_multilinear_matches_brute_force(table):
    rng = np.random.default_rng(3)
    coords = rng.uniform(0, 5, (4, 50))
    values = quadrilinear_lookup(table, tuple(torch.from_numpy(coords).float()))
    lut = table.numpy()
    for n in range(50):
        lo = np.minimum(np.floor(coords[:, n]).astype(int), 4)
        frac = coords[:, n] - lo
        total = 0.0
        for corner in range(16):
            bits = [(corner >> (3 - a)) & 1 for a in range(4)]
            weight = np.prod([frac[a] if bits[a] else 1 - frac[a] for a in range(4)])
            total += weight * lut[tuple(lo + bits)]
        assert values[n].item() == pytest.approx(total, abs=1e-4)


def test_values_beyond_last_point_read_the_last_point(table):
    # The official rule hi = min(lo + 1, B - 1) makes [B-1, B) a flat bin.
    coords = tuple(torch.tensor([5.0, 5.4, 5.99, 7.0]) for _ in range(4))
    values = quadrilinear_lookup(table, coords)
    assert torch.allclose(values, table[5, 5, 5, 5].expand(4))


def test_gradients_reach_table_and_coordinates(table):
    table = table.clone().requires_grad_(True)
    coords = tuple(torch.rand(30, requires_grad=True) * 4 for _ in range(4))
    quadrilinear_lookup(table, coords).sum().backward()
    assert table.grad is not None and table.grad.abs().sum() > 0


def test_analytic_max_fill_fuses_to_max():
    model = MMLUT(bins=17, lattice="endpoint").eval()
    model.fill_analytic("max")
    levels = torch.arange(17.0) / axis_scale(17, "endpoint")
    vis = levels[3].expand(1, 3, 4, 4)
    ir = levels[9].expand(1, 1, 4, 4)
    with torch.no_grad():
        fused = model(vis.clone(), ir.clone())
    assert torch.allclose(fused, ir, atol=1e-5)
    with pytest.raises(ValueError, match="unknown analytic rule"):
        model.fill_analytic("median")


def test_axis_scale_matches_official_tau():
    assert axis_scale(16) == pytest.approx(255 / 16)
    assert axis_scale(17, "endpoint") == 16
    with pytest.raises(ValueError, match="lattice"):
        axis_scale(16, "log")
