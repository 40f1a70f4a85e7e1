"""Customizable Contraction Hierarchies (CCH) in Numba, for département-scale graphs.

Three phases, as in Dibbelt, Strasser & Wagner (2016), one module and one object each:

1. **topology** (:mod:`.topology`, :class:`CCHTopology`): METIS nested-dissection order
   (:mod:`.order`), contraction (:mod:`.contract`: the chordal supergraph, the elimination
   tree, the arc directions that can ever be finite - on turn graphs most shortcuts are
   one-way: about half the directions and two thirds of the triangles go - the triangle
   lists and the input edge -> arc map) and subtree groups for parallel customization
   (:mod:`.partition`); weight independent, cached with the graph;
2. **metric** (:mod:`.metric`, :class:`CCHMetric`): arc weights and middle nodes for one
   weight array, in full (:mod:`.customize`) or partially after a few edges changed
   (:mod:`.partial`), in parallel over independent subtrees; written into recycled buffers
   whose ownership :mod:`.metric` describes;
3. **query** (:mod:`.search`, :class:`CCHWorkspace`): walks up the elimination tree from the
   seeds and from the targets, no priority queue; paths unpack to input edge ids through the
   middle node recorded for every shortcut.

:class:`CCHIndex` (:mod:`.index`) is the public entry point that holds them together;
:class:`CCHMetrics` (:mod:`.live`) maps live-traffic snapshots to customized metrics.
"""

from .index import CCHIndex, warm_up
from .live import CCHMetrics
from .metric import CCHMetric
from .search import CCHWorkspace, QueryStatus
from .topology import CCHTopology

__all__ = ["CCHIndex", "CCHMetric", "CCHMetrics", "CCHTopology", "CCHWorkspace",
           "QueryStatus", "warm_up"]
