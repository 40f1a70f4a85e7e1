"""Customizable Contraction Hierarchies (CCH) in Numba, for département-scale graphs.

Three phases, as in Dibbelt, Strasser & Wagner (2016):

1. **order** (:mod:`.order`): METIS nested dissection of the undirected graph;
2. **contraction** (:mod:`.contract`): the chordal supergraph, the elimination tree, the
   arc directions that can ever be finite (on turn graphs most shortcuts are one-way: about
   half the directions and two thirds of the triangles go), the triangle lists and the
   input edge -> arc map, all weight independent and cached with the graph;
3. **customization** (:mod:`.customize`): arc weights for one weight array, in full or
   partially after a few edges changed, in parallel over independent subtrees.

Queries (:mod:`.search`) walk up the elimination tree from the seeds and from the targets, no
priority queue; paths unpack to input edge ids through the middle node recorded for every
shortcut. :class:`CCHIndex` is the public entry point; :class:`CCHMetrics` maps live-traffic
snapshots to customized metrics.
"""

from .router import CCHIndex, CCHMetrics, CCHWorkspace, Metric, warm_up

__all__ = ["CCHIndex", "CCHMetrics", "CCHWorkspace", "Metric", "warm_up"]
