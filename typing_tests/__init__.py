"""How users call the public API, checked by mypy --strict and never executed."""
