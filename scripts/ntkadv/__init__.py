"""ntkadv: the math library of the Tsilivis & Kempe (NeurIPS 2022) reproduction.

Pure JAX/NumPy; never imports snakemake. File I/O lives only in `h5io`.
"""
