"""Testing utilities for the Gradient provider.

:mod:`airflow_provider_gradient.testing.emulator` holds a local emulator of the DigitalOcean
Gradient indexing-job API (``GradientEmulator``), and
:mod:`airflow_provider_gradient.testing.pytest_plugin` the ``gradient_emulator`` pytest fixture.
Nothing is imported here so that importing the package stays cheap.
"""
