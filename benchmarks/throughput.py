#!/usr/bin/env python3
"""Throughput benchmark: ``python benchmarks/throughput.py [flags]`` = ``jaxrl-policy bench [flags]``.

See benchmarks/README.md for what is measured and how to read the ratios; ``--help`` lists the flags.
"""
import sys

import jaxrl_policy  # noqa: F401  (first: sets the XLA:CPU scheduler flag before jax starts)
from jaxrl_policy.bench import main

if __name__ == "__main__":
    main(sys.argv[1:])
