"""Small helpers shared by the CCH modules: inlined njit searches and heaps, a branch-free
select, and the thread count that decides parallel customization."""

from __future__ import annotations

import platform
from typing import Any

import numba
import numpy as np
from numba import njit
from numpy.typing import NDArray

#: Array aliases for the annotations of the CCH modules (the dtype is part of the contract:
#: numba compiles one specialisation per dtype, and the kernels assume these).
Int32Array = NDArray[np.int32]
UInt32Array = NDArray[np.uint32]
Int64Array = NDArray[np.int64]
UInt8Array = NDArray[np.uint8]
Float64Array = NDArray[np.float64]


def numba_threads() -> int:
    """Threads numba's parallel kernels may use (parallel customization needs >= 2)."""
    return int(numba.get_num_threads())


@njit(cache=True, nogil=True, inline="always")
def find_arc(up_first: Int64Array, up_head: Int32Array, x: int, y: int) -> int:
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
def find_in(head: UInt32Array, lo: Any, hi: Any, z: Any) -> np.int64:
    """Position of ``z`` in the sorted ``head[lo:hi]``, or -1."""
    lo = np.int64(lo)
    hi = np.int64(hi)
    while lo < hi:
        mid = (lo + hi) >> 1
        h = head[mid]
        if h < z:
            lo = mid + 1
        elif h > z:
            hi = mid
        else:
            return np.int64(mid)
    return np.int64(-1)


@njit(cache=True, nogil=True, inline="always")
def tail_of(first: UInt32Array, a: Any) -> np.int64:
    """The node whose arc list ``first[x]:first[x+1]`` holds arc ``a`` (binary search)."""
    lo = np.int64(0)
    hi = np.int64(len(first) - 1)
    while hi - lo > 1:  # first[lo] <= a < first[hi]
        mid = (lo + hi) >> 1
        if first[mid] <= a:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True, inline="always")
def key_push(heap: NDArray[np.integer[Any]], size: int, x: Any) -> int:
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
def key_pop(heap: NDArray[np.integer[Any]], size: int) -> tuple[Any, int]:
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


# A branch-free "y if c < old else v": the via update of the customization loops. The
# comparison is taken (a new best) ~13% of the time in no predictable pattern, so a branch
# mispredicts often; LLVM turns the obvious select back into a branch (x86's cmov converter),
# so on x86-64 it is written as ucomisd + cmovb (inline assembly): the triangle loop of New
# York's turn graph runs ~1.3x faster. Elsewhere, the plain select.
if platform.machine().lower() in ("x86_64", "amd64"):
    import llvmlite.binding as _llb
    from llvmlite import ir as _ir
    from numba import types as _types
    from numba.extending import intrinsic as _intrinsic

    _llb.initialize_native_asmparser()  # numba's JIT needs it for inline assembly

    @_intrinsic
    def _select_lt_x86(typingctx: Any, c: Any, old: Any, y: Any, v: Any) -> Any:
        sig = _types.int64(_types.float64, _types.float64, _types.int64, _types.int64)

        def codegen(context: Any, builder: Any, sig_: Any, args: Any) -> Any:
            fnty = _ir.FunctionType(_ir.IntType(64), [_ir.DoubleType(), _ir.DoubleType(),
                                                      _ir.IntType(64), _ir.IntType(64)])
            # CF is set when c < old (or unordered: never here, no NaN)
            asm = _ir.InlineAsm(fnty, "ucomisd $2, $1\n\tcmovbq $3, $0",
                                "=r,x,x,r,0,~{flags}", side_effect=False)
            return builder.call(asm, list(args))

        return sig, codegen

    @njit(cache=True, nogil=True, inline="always")
    def select_lt(c: float, old: float, y: Any, v: Any) -> Any:
        """``y if c < old else v`` (int64), without a branch."""
        return _select_lt_x86(c, old, y, v)  # type: ignore[call-arg]  # typed by numba
else:
    @njit(cache=True, nogil=True, inline="always")
    def select_lt(c: float, old: float, y: Any, v: Any) -> Any:
        """``y if c < old else v`` (int64)."""
        return y if c < old else v
