"""Benchmarks of the suite's strength and speed: ``python3 tasks.py bench`` (see ``run.py``)."""
