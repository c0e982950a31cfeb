"""Taskwire's Python client and ``taskwire`` command line."""
