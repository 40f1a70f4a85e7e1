"""Nearest road segments to a point (the nearest with its ties, or the k nearest roads): a
uniform grid over the segments, searched ring by ring.

Segments (in a local metric projection) are cut into pieces no longer than the grid's cell,
and each piece is filed under the cell of its midpoint, so a piece lies within half a cell of
its cell: searching the rings of cells around the query point until the ring is farther than
the best distance found (plus half a cell) is exact. A query costs a few microseconds, where a
shapely STRtree query costs tens (most of it building the query geometry).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

#: The grid :func:`build_grid` returns: ``(x0, y0, cell, nx, ny, first, piece_seg, piece_t0,
#: piece_t1, pax, pay, pbx, pby)``.
Grid = tuple[Any, ...]


def build_grid(ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray,
               cell: float) -> Grid:
    """Index segments ``(ax, ay) -> (bx, by)`` (metres). Returns the grid as a tuple of arrays
    for :func:`nearest_segments`: ``(x0, y0, cell, nx, ny, first, piece_seg, piece_t0,
    piece_t1, pax, pay, pbx, pby)``."""
    ax, ay, bx, by = (np.ascontiguousarray(v, dtype=np.float64) for v in (ax, ay, bx, by))
    n = len(ax)
    length = np.hypot(bx - ax, by - ay)
    pieces = np.maximum(1, np.ceil(length / cell)).astype(np.int64)
    seg = np.repeat(np.arange(n, dtype=np.int32), pieces)
    k = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    t0 = k / pieces[seg]
    t1 = (k + 1) / pieces[seg]
    pax, pay = ax[seg] + t0 * (bx - ax)[seg], ay[seg] + t0 * (by - ay)[seg]
    pbx, pby = ax[seg] + t1 * (bx - ax)[seg], ay[seg] + t1 * (by - ay)[seg]
    if n:
        x0 = float(min(pax.min(), pbx.min())) - cell
        y0 = float(min(pay.min(), pby.min())) - cell
        nx = int((max(pax.max(), pbx.max()) - x0) // cell) + 2
        ny = int((max(pay.max(), pby.max()) - y0) // cell) + 2
    else:
        x0 = y0 = 0.0
        nx = ny = 1
    cx = ((pax + pbx) / 2 - x0) // cell
    cy = ((pay + pby) / 2 - y0) // cell
    cid = (cy * nx + cx).astype(np.int64)
    order = np.argsort(cid, kind="stable")
    first = np.zeros(nx * ny + 1, dtype=np.int64)
    np.cumsum(np.bincount(cid, minlength=nx * ny), out=first[1:])
    return (float(x0), float(y0), float(cell), nx, ny, first, seg[order], t0[order],
            t1[order], pax[order], pay[order], pbx[order], pby[order])


@njit(cache=True, inline="always")
def _point_to_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float
                      ) -> tuple[float, float]:
    """``(u, d2)``: where the point's projection falls on segment a-b (0..1, clamped) and the
    squared distance to it."""
    dx = bx - ax
    dy = by - ay
    den = dx * dx + dy * dy
    u = 0.0
    if den > 0.0:
        u = ((px - ax) * dx + (py - ay) * dy) / den
        if u < 0.0:
            u = 0.0
        elif u > 1.0:
            u = 1.0
    qx = ax + u * dx - px
    qy = ay + u * dy - py
    return u, qx * qx + qy * qy


@njit(cache=True, inline="always")
def _rings(px: float, py: float, x0: float, y0: float, cell: float, nx: int, ny: int,
           radius: float) -> tuple[int, int, int, int]:
    """``(ci, cj, first ring, last ring)`` of a search from ``(px, py)``: rings are squares
    of cells at Chebyshev distance ``ring`` from the point's cell ``(ci, cj)``, scanned from
    the first that touches the grid to the last that may hold a piece within ``radius``."""
    ci = int((px - x0) // cell)
    cj = int((py - y0) // cell)
    ring = max(0, ci - (nx - 1), -ci, cj - (ny - 1), -cj)
    max_ring = max(abs(ci), abs(nx - 1 - ci), abs(cj), abs(ny - 1 - cj))
    if radius < max_ring * cell:
        max_ring = min(max_ring, int(radius // cell) + 2)
    return ci, cj, ring, max_ring


@njit(cache=True, inline="always")
def _ring_reach(ring: int, cell: float) -> float:
    """Every piece in ``ring`` is at least this far (metres; <= 0: no bound)."""
    return (ring - 1.0) * cell - 0.5 * cell


@njit(cache=True, inline="always")
def _ring_cells(ring: int, ci: int, cj: int, nx: int, ny: int, cells: Any) -> int:
    """Fill ``cells`` with the ids of the cells of ``ring`` inside the grid, row by row;
    returns how many (``cells`` holds at least ``2 * (nx + ny) + 4``)."""
    n = 0
    for j in range(max(0, cj - ring), min(ny - 1, cj + ring) + 1):
        edge_row = j == cj - ring or j == cj + ring
        lo, hi = max(0, ci - ring), min(nx - 1, ci + ring)
        i = lo
        while i <= hi:
            if not edge_row and i != ci - ring and i != ci + ring:
                i = ci + ring  # a middle row: only its two end cells
                continue
            cells[n] = j * nx + i
            n += 1
            i += 1
    return n


@njit(cache=True, inline="always")
def _usable(e: Any, usable: Any, twin: Any) -> bool:
    """Edge ``e`` or its twin may be used."""
    if usable[e]:
        return True
    tw = twin[e]
    return tw >= 0 and usable[tw]


@njit(cache=True, nogil=True)
def _nearest(x0, y0, cell, nx, ny, first, piece_seg, piece_t0, piece_t1, pax, pay, pbx, pby,
             px, py, radius, seg_edge, twin, usable, tol, out_seg, out_t, out_d2):
    """Nearest usable segment to ``(px, py)`` within ``radius``: fills ``out_*`` with it and
    every segment within ``tol`` squared metres of it (ties); returns how many (0: none)."""
    ci, cj, ring, max_ring = _rings(px, py, x0, y0, cell, nx, ny, radius)
    best = np.inf
    count = 0
    limit = radius * radius
    cells = np.empty(2 * (nx + ny) + 4, dtype=np.int64)
    while ring <= max_ring:
        reach = _ring_reach(ring, cell)
        if reach > 0.0 and reach * reach > min(best + tol, limit):
            break
        for ic in range(_ring_cells(ring, ci, cj, nx, ny, cells)):
            c = cells[ic]
            for p in range(first[c], first[c + 1]):
                s = piece_seg[p]
                if not _usable(seg_edge[s], usable, twin):
                    continue
                u, d2 = _point_to_segment(px, py, pax[p], pay[p], pbx[p], pby[p])
                if d2 > limit or d2 > best + tol:
                    continue
                t = piece_t0[p] + u * (piece_t1[p] - piece_t0[p])
                if d2 < best:
                    best = d2
                    # keep only the earlier candidates still within tol of the best
                    kept = 0
                    for q in range(count):
                        if out_d2[q] <= best + tol:
                            out_seg[kept] = out_seg[q]
                            out_t[kept] = out_t[q]
                            out_d2[kept] = out_d2[q]
                            kept += 1
                    count = kept
                if count < len(out_seg):
                    out_seg[count] = s
                    out_t[count] = t
                    out_d2[count] = d2
                    count += 1
        ring += 1
    return count


def nearest_segments(grid: Grid, px: float, py: float, radius: float, seg_edge: np.ndarray,
                     twin: np.ndarray, usable: np.ndarray, *, tol: float = 1e-6,
                     max_ties: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(segments, t, d2)`` of the nearest usable segment and its ties (squared distances
    within ``tol``), nearest first; empty arrays when none lies within ``radius``."""
    out_seg = np.empty(max_ties, dtype=np.int32)
    out_t = np.empty(max_ties)
    out_d2 = np.empty(max_ties)
    # (mypy cannot count the grid's arrays ahead of fixed arguments: hence the ignore)
    n = _nearest(*grid, float(px), float(py), float(radius), seg_edge,  # type: ignore[call-arg]
                 twin, usable, float(tol), out_seg, out_t, out_d2)
    order = np.argsort(out_d2[:n], kind="stable")
    return out_seg[:n][order], out_t[:n][order], out_d2[:n][order]


@njit(cache=True, nogil=True)
def _before(d2a, sa, d2b, sb):
    """Order of the k-nearest search: nearer first, the lower segment id on a tie."""
    return d2a < d2b or (d2a == d2b and sa < sb)


@njit(cache=True, nogil=True)
def _nearest_edges(x0, y0, cell, nx, ny, first, piece_seg, piece_t0, piece_t1, pax, pay, pbx,
                   pby, px, py, radius, seg_edge, twin, usable, out_seg, out_t, out_d2):
    """The ``len(out_seg)`` nearest distinct edges (``seg_edge`` values) usable in at least
    one direction within ``radius`` of ``(px, py)``, each by its nearest segment: fills
    ``out_*`` nearest first; returns how many."""
    k = len(out_seg)
    if k == 0:
        return 0
    ci, cj, ring, max_ring = _rings(px, py, x0, y0, cell, nx, ny, radius)
    count = 0
    limit = radius * radius
    cells = np.empty(2 * (nx + ny) + 4, dtype=np.int64)
    while ring <= max_ring:
        reach = _ring_reach(ring, cell)
        bound = limit if count < k else min(limit, out_d2[k - 1])
        if reach > 0.0 and reach * reach > bound:
            break
        for ic in range(_ring_cells(ring, ci, cj, nx, ny, cells)):
            c = cells[ic]
            for p in range(first[c], first[c + 1]):
                s = piece_seg[p]
                e = seg_edge[s]
                if not _usable(e, usable, twin):
                    continue
                u, d2 = _point_to_segment(px, py, pax[p], pay[p], pbx[p], pby[p])
                if d2 > limit:
                    continue
                if count == k and not _before(d2, s, out_d2[k - 1], out_seg[k - 1]):
                    continue
                # one entry per edge: its nearest segment so far
                pos = -1
                for q in range(count):
                    if seg_edge[out_seg[q]] == e:
                        pos = q
                        break
                if pos >= 0:
                    if not _before(d2, s, out_d2[pos], out_seg[pos]):
                        continue
                    for q in range(pos, count - 1):
                        out_seg[q] = out_seg[q + 1]
                        out_t[q] = out_t[q + 1]
                        out_d2[q] = out_d2[q + 1]
                    count -= 1
                elif count == k:
                    count -= 1  # the farthest makes room
                q = count
                while q > 0 and _before(d2, s, out_d2[q - 1], out_seg[q - 1]):
                    out_seg[q] = out_seg[q - 1]
                    out_t[q] = out_t[q - 1]
                    out_d2[q] = out_d2[q - 1]
                    q -= 1
                out_seg[q] = s
                out_t[q] = piece_t0[p] + u * (piece_t1[p] - piece_t0[p])
                out_d2[q] = d2
                count += 1
        ring += 1
    return count


def nearest_edges(grid: Grid, px: float, py: float, radius: float, seg_edge: np.ndarray,
                  twin: np.ndarray, usable: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(segments, t, d2)`` of the ``k`` nearest distinct edges (``seg_edge`` values) usable
    in at least one direction within ``radius``, each by its nearest segment, nearest first
    (equal distances: the lower segment id first); fewer when fewer lie within ``radius``.

    What OSRM's ``/nearest`` answers: the nearest road pieces, not the nearest segments (a
    curved road would otherwise fill the answer with its own segments)."""
    out_seg = np.empty(int(k), dtype=np.int32)
    out_t = np.empty(int(k))
    out_d2 = np.empty(int(k))
    n = _nearest_edges(*grid, float(px), float(py), float(radius),  # type: ignore[call-arg]
                       seg_edge, twin, usable, out_seg, out_t, out_d2)
    return out_seg[:n], out_t[:n], out_d2[:n]
