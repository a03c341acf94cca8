"""From validated jobs to a finished store: the plan, the Dask graph and its tasks, the cluster,
the zarr store and its lock, provenance and interrupts.
"""
