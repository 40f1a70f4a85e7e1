"""Input validation for the public wrappers.

Numba kernels do no bounds checking, so a bad index is a silent memory error,
not an exception. The wrappers therefore check everything that changes per
query (dtypes, shapes, seed/target indices and costs: O(1) + O(k)) and convert
dtypes with ``np.ascontiguousarray`` (a no-op for already-correct arrays).

Checking the *contents* of the graph and weight arrays is O(m), too slow for
every query, so it is done once by :func:`validate_graph` (when a graph is
loaded) and :func:`validate_weight` (when a traffic weight array is installed).
"""

import numpy as np
from numba import njit

from .workspace import Workspace


def index_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and arr.size == 0):
        raise ValueError(f"{name} must have an integer dtype, got {arr.dtype}")
    # Only a conversion (which copies anyway) pays for this O(len) range check.
    if arr.dtype != np.int32 and arr.size:
        if arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max:
            raise ValueError(f"{name} does not fit in int32")
    return np.ascontiguousarray(arr, dtype=np.int32)


def float_array(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numeric, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def check_graph(first_out, head, weight):
    """Convert the forward CSR and weights; return ``(first_out, head, weight, n)``."""
    first_out = index_array(first_out, "first_out")
    head = index_array(head, "head")
    weight = float_array(weight, "weight")
    if len(first_out) == 0:
        raise ValueError("first_out must have n + 1 entries, got an empty array")
    if len(weight) != len(head):
        raise ValueError(f"weight has {len(weight)} entries but head has {len(head)} edges")
    if first_out[0] != 0 or first_out[-1] != len(head):
        raise ValueError(
            f"first_out must start at 0 and end at len(head)={len(head)}, "
            f"got {first_out[0]} .. {first_out[-1]}"
        )
    return first_out, head, weight, len(first_out) - 1


def check_reverse(first_in, in_edge, tail, n: int, m: int):
    """Convert the reverse CSR; return ``(first_in, in_edge, tail)``."""
    first_in = index_array(first_in, "first_in")
    in_edge = index_array(in_edge, "in_edge")
    tail = index_array(tail, "tail")
    if len(first_in) != n + 1:
        raise ValueError(f"first_in must have n + 1 = {n + 1} entries, got {len(first_in)}")
    if len(in_edge) != m or len(tail) != m:
        raise ValueError(f"in_edge and tail must have m = {m} entries")
    if first_in[0] != 0 or first_in[-1] != m:
        raise ValueError(f"first_in must start at 0 and end at m = {m}")
    return first_in, in_edge, tail


@njit(cache=True)
def _first_bad(nodes, cost, n):
    """Index of the first entry with a bad node id or cost, or -1 (cheaper than numpy here)."""
    for i in range(len(nodes)):
        # NaN fails every comparison, so `not cost >= 0` rejects it too.
        if nodes[i] < 0 or nodes[i] >= n or not cost[i] >= 0:
            return i
    return -1


def check_nodes(nodes, cost, n: int, name: str, cost_name: str):
    """Convert seed or target nodes and their offsets, checking ranges and values."""
    nodes = index_array(nodes, name)
    cost = float_array(cost, cost_name)
    if len(cost) != len(nodes):
        raise ValueError(f"{cost_name} has {len(cost)} entries but {name} has {len(nodes)}")
    i = _first_bad(nodes, cost, n)
    if i >= 0 and not 0 <= nodes[i] < n:
        raise ValueError(f"{name} must be node ids in [0, {n}), got {nodes[i]} at index {i}")
    if i >= 0:
        raise ValueError(f"{cost_name} must be >= 0 (inf allowed), got {cost[i]} at index {i}")
    return nodes, cost


def check_groups(first, nodes, cost, n: int, name: str):
    """Convert a CSR-like group of candidate nodes (``first`` int32[p+1])."""
    nodes, cost = check_nodes(nodes, cost, n, f"{name}_nodes", f"{name}_cost")
    first = index_array(first, f"{name}_first")
    if len(first) == 0 or first[0] != 0 or first[-1] != len(nodes):
        raise ValueError(f"{name}_first must start at 0 and end at {len(nodes)}")
    if (np.diff(first) < 0).any():
        raise ValueError(f"{name}_first must be non-decreasing")
    return first, nodes, cost


def check_workspace(ws, n: int, name: str = "ws") -> tuple:
    if not isinstance(ws, Workspace):
        raise ValueError(f"{name} must be a Workspace, got {type(ws).__name__}")
    if ws.n != n:
        raise ValueError(f"{name} was made for {ws.n} nodes but the graph has {n}")
    return ws.arrays()


def validate_graph(first_out, head, tail=None, first_in=None, in_edge=None) -> None:
    """Check a graph's CSR arrays once, at load time (O(n + m)).

    Raises ``ValueError`` if ``first_out`` is not a valid offset array, a head
    is out of range, ``tail`` disagrees with ``first_out``, or the reverse CSR
    is not a grouping of all edges by head node.
    """
    first_out = index_array(first_out, "first_out")
    head = index_array(head, "head")
    check_graph(first_out, head, np.zeros(len(head)))
    n, m = len(first_out) - 1, len(head)
    if (np.diff(first_out) < 0).any():
        raise ValueError("first_out must be non-decreasing")
    if m and (head.min() < 0 or head.max() >= n):
        raise ValueError(f"head must be node ids in [0, {n})")
    if tail is not None:
        expect = np.repeat(np.arange(n, dtype=np.int32), np.diff(first_out))
        if not np.array_equal(index_array(tail, "tail"), expect):
            raise ValueError("tail[e] must be the node whose first_out range contains e")
    if (first_in is None) != (in_edge is None):
        raise ValueError("first_in and in_edge go together")
    if first_in is not None:
        first_in, in_edge, _ = check_reverse(first_in, in_edge, np.zeros(m, np.int32), n, m)
        if (np.diff(first_in) < 0).any():
            raise ValueError("first_in must be non-decreasing")
        if not np.array_equal(np.sort(in_edge), np.arange(m)):
            raise ValueError("in_edge must be a permutation of the edge ids")
        owner = np.repeat(np.arange(n, dtype=np.int32), np.diff(first_in))
        if not np.array_equal(head[in_edge], owner):
            raise ValueError("in_edge must group edges by their head node as given by first_in")


def validate_weight(weight, m: int) -> None:
    """Check a weight array once, when it is installed (O(m)).

    Weights must be ``>= 0`` or ``inf`` (closed edge); NaN or negative values
    would silently break Dijkstra's invariant, so they are rejected here.
    """
    w = np.asarray(weight)
    if w.shape != (m,):
        raise ValueError(f"weight must have shape ({m},), got {w.shape}")
    if not (w >= 0).all():
        raise ValueError("weight must be >= 0 or inf (no NaN, no negative values)")
