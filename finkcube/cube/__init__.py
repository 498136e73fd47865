"""Cubes as pure functions: source records and stamps in, an ``xarray.Dataset`` out.

:mod:`~finkcube.cube.assemble` stacks, pads and sorts (and merges new epochs into a cube);
:mod:`~finkcube.cube.columns` types the per-epoch columns; :mod:`~finkcube.cube.epochs` pairs
records with stamps; :mod:`~finkcube.cube.canvas` places, resizes and normalises stamps;
:mod:`~finkcube.cube.wcs` rebuilds an epoch's sky WCS. No I/O happens here.
"""

from finkcube.cube.assemble import COLUMNS_ATTR, assemble_cube, cube_to_cutouts, merge_cubes
from finkcube.cube.wcs import epoch_wcs

__all__ = ["COLUMNS_ATTR", "assemble_cube", "cube_to_cutouts", "epoch_wcs", "merge_cubes"]
