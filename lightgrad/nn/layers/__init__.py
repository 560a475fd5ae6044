"""The layers of ``lightgrad.nn``, one module per family; import them from ``lightgrad.nn``."""
