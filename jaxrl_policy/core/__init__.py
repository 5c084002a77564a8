"""The bottom floor: types, environments, networks, distributions, normalization, storage and losses.

Nothing here imports from a floor above; an algorithm (``jaxrl_policy.algorithms``) is built from these.
"""
