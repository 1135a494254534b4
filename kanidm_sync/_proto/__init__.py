"""The pure wire layer of kanidm_sync.

Rule: nothing in this package does I/O, reads a clock, draws randomness or logs. It may
import the standard library, attrs, typing_extensions and the package's ``_types`` and
``_exceptions`` modules only (tests/test_layering.py enforces it).
"""
