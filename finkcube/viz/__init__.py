"""Pictures of cubes: stamp grids with light curves (:mod:`~finkcube.viz.plot`) and GIFs
(:mod:`~finkcube.viz.animate`), drawn with matplotlib (:mod:`~finkcube.viz.figure` holds the
pieces both share). matplotlib is imported only when something is drawn.
"""
