"""Adversarial tests: no secret leaks anywhere, and hostile input fails cleanly."""
