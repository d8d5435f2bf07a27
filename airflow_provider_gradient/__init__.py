"""Apache Airflow provider for DigitalOcean Gradient AI knowledge-base indexing jobs."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
