"""The command line, one module per command (``main.py`` is the entry point and the only one that imports
the commands; ``common.py`` holds what they share)."""
