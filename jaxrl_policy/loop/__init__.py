"""The loop floor: one training loop (``online.py``), its fixed-dataset form (``offline.py``) and evaluation.

Each receives an ``Algorithm`` value and its environments; ``running/build.py`` makes them from a config.
"""
