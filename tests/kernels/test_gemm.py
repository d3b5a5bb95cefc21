"""openge.kernels.gemm: the register-tiled GEMM on packed constant weights against float64
NumPy products — edge tiles in both directions, K passes of unequal length, empty K — and
its drive form on the thread team against the whole kernel."""

from __future__ import annotations

import mmap
import sys

import numpy as np
import pytest

from openge import kernels
from tests.conftest import resident_pages
from tests.kernels.parts import drive_alone, drive_team

gemm = kernels.load("gemm")
RNG = np.random.default_rng(5)


def _case(m: int, k: int, n: int):
    a = RNG.standard_normal((m, k)).astype(np.float32)
    w = RNG.standard_normal((k, n)).astype(np.float32)
    return a, w, a.astype(np.float64) @ w.astype(np.float64)


def _close(c: np.ndarray, ref: np.ndarray, k: int) -> None:
    # float32 sums of k products: a few ulps of the sum of magnitudes per output
    bound = 4e-7 * max(k, 1) ** 0.5 * max(float(np.abs(ref).max()), 1.0) * 4
    assert np.abs(c - ref).max() <= bound


@pytest.mark.parametrize(
    ("m", "k", "n"),
    [
        (1, 1, 1),
        (gemm.MR, 3, gemm.NR),  # one whole tile
        (gemm.MR + 1, 17, gemm.NR + 1),  # an extra row and an extra column
        (gemm.MR + gemm.MR_MID, 9, gemm.NR),  # the last rows on the middle tile, all of it
        (2 * gemm.MR + gemm.MR_SMALL + 1, 9, gemm.NR),  # ... part of it
        (gemm.MR + gemm.MR_SMALL, 9, gemm.NR),  # ... on the small tile
        (2 * gemm.MR - 1, gemm.KC + 1, 3 * gemm.NR - 5),  # two K passes, partial last vector
        (37, 3 * gemm.KC + 7, 101),  # four unequal-looking passes, cut equal
        (128, 768, 64),
    ],
)
def test_matmul_matches_float64(m, k, n):
    a, w, ref = _case(m, k, n)
    c = np.full((m, n), np.nan, np.float32)
    gemm.matmul(a, gemm.pack_b(w), c)
    _close(c, ref, k)


@pytest.mark.parametrize("rest", [1, gemm.MR_SMALL, gemm.MR_SMALL + 1, gemm.MR_MID])
def test_last_rows_tiles_give_the_whole_tile_bits(rest):
    """A block's last rows on the smaller tiles: each sum the same fused multiply-adds in
    the same order as on a whole tile (the rows of a taller A, where every block is whole)."""
    k, n = 2 * gemm.KC + 5, 2 * gemm.NR + 3
    a = RNG.standard_normal((2 * gemm.MR, k)).astype(np.float32)
    packed = gemm.pack_b(RNG.standard_normal((k, n)).astype(np.float32))
    whole = np.empty((2 * gemm.MR, n), np.float32)
    gemm.matmul(a, packed, whole)
    m = gemm.MR + rest
    part = np.full((m, n), np.nan, np.float32)
    gemm.matmul(np.ascontiguousarray(a[:m]), packed, part)
    assert np.array_equal(part, whole[:m])


def test_matmul_with_empty_k_is_zero():
    a = np.zeros((5, 0), np.float32)
    c = np.full((5, 9), np.nan, np.float32)
    gemm.matmul(a, gemm.pack_b(np.zeros((0, 9), np.float32)), c)
    assert (c == 0).all()


def test_pack_b_lays_out_panels_and_pads_with_zero():
    w = np.arange(3 * (gemm.NR + 2), dtype=np.float32).reshape(3, gemm.NR + 2)
    packed = gemm.pack_b(w)
    assert packed.ctypes.data % gemm.ALIGN == 0
    panels = packed.reshape(2, 3, gemm.NR)
    np.testing.assert_array_equal(panels[0], w[:, : gemm.NR])
    np.testing.assert_array_equal(panels[1, :, :2], w[:, gemm.NR :])
    assert (panels[1, :, 2:] == 0).all()


def test_rows_past_the_matrix_are_never_read_or_written():
    """A partial row block reads only A's rows (a NaN after them would otherwise show) and
    writes only C's."""
    m, k, n = gemm.MR + 2, 40, 2 * gemm.NR
    a, w, ref = _case(m, k, n)
    a_big = np.full((m + gemm.MR, k), np.nan, np.float32)
    a_big[:m] = a
    c_big = np.full((m + gemm.MR, n), -7.0, np.float32)
    gemm.matmul(a_big[:m], gemm.pack_b(w), c_big[:m])
    _close(c_big[:m], ref, k)
    assert (c_big[m:] == -7.0).all()


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
@pytest.mark.parametrize("n", [70, 5 * gemm.NR + 3, gemm.NR // 2])  # 3, 6 and 1 panels
def test_drive_covers_every_item(parts, n):
    """Every (row block, slice of panels) item is computed once, whichever part (odd counts
    cut blocks in the middle), with the serial kernel's sums, in its order."""
    m, k = 5 * gemm.MR + 3, 300
    a, w, ref = _case(m, k, n)
    packed = gemm.pack_b(w)
    items = gemm.item_count(m)
    assert items == -(-m // gemm.MR) * gemm.SLICES
    c = np.full((m, n), np.nan, np.float32)
    drive_alone(gemm.matmul_drive, (a, packed, c), items, min(parts, items))
    _close(c, ref, k)
    serial = np.full((m, n), np.nan, np.float32)
    gemm.matmul(a, packed, serial)
    np.testing.assert_array_equal(c, serial)  # each output's sums in the same order
    c2 = np.full((m, n), np.nan, np.float32)
    drive_team(gemm.matmul_drive, gemm.matmul, (a, packed, c2), items, min(parts, items))
    np.testing.assert_array_equal(c2, c)


def _panels(w: np.ndarray, nr: int) -> np.ndarray:
    """The packed layout written out plainly: columns padded to whole panels of ``nr`` with
    zeros, then panel by panel, row by row."""
    k, n = w.shape
    padded = np.zeros((k, -(-n // nr) * nr), np.float32)
    padded[:, :n] = w
    return padded.reshape(k, -1, nr).transpose(1, 0, 2).ravel()


@pytest.mark.parametrize(("k", "n"), [(1100, 1000), (3, 40), (600, 32), (1, 1)])
def test_pack_b_writes_the_panels_in_several_passes_over_k(k, n):
    w = RNG.standard_normal((k, n)).astype(np.float32)
    for nr in (gemm.NR, gemm.NR_T):
        np.testing.assert_array_equal(gemm.pack_b(w, nr), _panels(w, nr))
        np.testing.assert_array_equal(gemm.pack_b(w.T.copy().T, nr), _panels(w, nr))
        np.testing.assert_array_equal(gemm.pack_b(w.T.copy(), nr), _panels(w.T, nr))
        np.testing.assert_array_equal(gemm.pack_b(w.T.copy().T.T, nr), _panels(w.T, nr))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_pack_b_releases_a_mapped_weights_pages_as_it_packs(tmp_path):
    w = RNG.standard_normal((4100, 1000)).astype(np.float32)  # 16.4 MB: eight passes
    path = tmp_path / "w.bin"
    w.tofile(path)
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    mapped = np.frombuffer(mapping, np.float32).reshape(w.shape)
    packed = gemm.pack_b(mapped)
    np.testing.assert_array_equal(packed, _panels(w, gemm.NR))
    # every page was read; what stays are the pages a pass boundary cuts and the file's
    # page-cache folios the last pass mapped whole (up to 2 MiB each on Linux 6.18)
    assert resident_pages(mapping) * mmap.PAGESIZE < w.nbytes // 2
    np.testing.assert_array_equal(mapped, w)  # read back from the page cache
    del mapped
    mapping.close()
