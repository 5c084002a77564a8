"""Running: the algorithm registry and builders (``build.py``), file checks before compiling
(``preflight.py``), the chunked runner with checkpoints and divergence checks, sweeps, the device mesh,
the throughput bench and dataset collection."""
