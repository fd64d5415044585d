"""lm-evaluation-harness task files: ``local/`` (read the data mirror), ``hub/`` (the project's
hub variants) and ``utils.py`` (their ``process_docs`` and helper functions)."""
