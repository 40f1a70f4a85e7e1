"""Indexed binary min-heap with decrease-key, over caller-owned flat arrays.

The heap lives in three arrays of a :class:`~engine.kernels.workspace.Workspace`:
``heap_node[i]`` / ``heap_key[i]`` are the node and key at heap slot ``i``, and
``heap_pos[v]`` is the slot of node ``v`` (``-1`` when ``v`` is not in the heap).
The current size is a local integer of the calling kernel and is threaded through
these functions, so the heap itself never allocates.

Why an indexed heap rather than a lazy one (push duplicates, skip stale pops):
every node is in the heap at most once, so the arrays can be sized ``n`` once and
reused across queries, and ``heap_pos`` doubles as the "is queued" flag.

Caution: numba's on-disk cache (``cache=True``) is keyed on each kernel's own
source file, so after editing this file (or ``workspace.py``) delete
``engine/kernels/__pycache__`` or the kernels that inline it may run stale code.
"""

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _sift_up(heap_node, heap_key, heap_pos, i):
    node = heap_node[i]
    key = heap_key[i]
    while i > 0:
        parent = (i - 1) >> 1
        if heap_key[parent] <= key:
            break
        heap_node[i] = heap_node[parent]
        heap_key[i] = heap_key[parent]
        heap_pos[heap_node[i]] = i
        i = parent
    heap_node[i] = node
    heap_key[i] = key
    heap_pos[node] = i


@njit(cache=True, nogil=True, inline="always")
def _sift_down(heap_node, heap_key, heap_pos, size, i):
    node = heap_node[i]
    key = heap_key[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heap_key[child + 1] < heap_key[child]:
            child += 1
        if heap_key[child] >= key:
            break
        heap_node[i] = heap_node[child]
        heap_key[i] = heap_key[child]
        heap_pos[heap_node[i]] = i
        i = child
    heap_node[i] = node
    heap_key[i] = key
    heap_pos[node] = i


@njit(cache=True, nogil=True, inline="always")
def heap_push_or_decrease(heap_node, heap_key, heap_pos, size, node, key):
    """Insert ``node`` with ``key``, or lower its key if it is queued; return the new size.

    The caller guarantees ``key`` is not larger than a queued node's current key
    (it only calls this on a strict improvement of the tentative distance).
    """
    i = heap_pos[node]
    if i < 0:
        i = size
        size += 1
    heap_node[i] = node
    heap_key[i] = key
    _sift_up(heap_node, heap_key, heap_pos, i)
    return size


@njit(cache=True, nogil=True, inline="always")
def heap_pop(heap_node, heap_key, heap_pos, size):
    """Remove the minimum; return ``(node, key, new_size)``. ``size`` must be > 0."""
    node = heap_node[0]
    key = heap_key[0]
    heap_pos[node] = -1
    size -= 1
    if size > 0:
        heap_node[0] = heap_node[size]
        heap_key[0] = heap_key[size]
        _sift_down(heap_node, heap_key, heap_pos, size, 0)
    return node, key, size
