"""The geometry stage: overlap graph, temporal intersections (Algorithm 1) and the patch plan."""
