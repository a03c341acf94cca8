"""The geometry of a repeat: lattices, lattice gathers and padding, tile grids, resampling along
the lattice, seam metrics, and analysis of how an input repeats.
"""
