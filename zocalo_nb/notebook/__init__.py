"""Notebooks as processing steps: emit(), parameter injection, a kernel pool, the runner."""
