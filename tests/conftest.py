"""Shared test configuration: pytester, for testing the pytest plugin in-process."""

pytest_plugins = ["pytester"]
