"""Small njit helpers shared by the CCH modules (inlined into their callers)."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def find_arc(up_first, up_head, x, y):
    """Arc id of ``(x, y)`` (``x < y``) by binary search in ``x``'s sorted list, or -1."""
    lo, hi = up_first[x], up_first[x + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        h = up_head[mid]
        if h < y:
            lo = mid + 1
        elif h > y:
            hi = mid
        else:
            return mid
    return -1


@njit(cache=True, nogil=True, inline="always")
def key_push(heap, size, x):
    """Push ``x`` on a plain binary min-heap of keys; returns the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if heap[p] <= x:
            break
        heap[i] = heap[p]
        i = p
    heap[i] = x
    return size + 1


@njit(cache=True, nogil=True, inline="always")
def key_pop(heap, size):
    """Pop the smallest key; returns ``(key, new size)``."""
    top = heap[0]
    size -= 1
    if size > 0:
        last = heap[size]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= size:
                break
            if c + 1 < size and heap[c + 1] < heap[c]:
                c += 1
            if heap[c] >= last:
                break
            heap[i] = heap[c]
            i = c
        heap[i] = last
    return top, size
