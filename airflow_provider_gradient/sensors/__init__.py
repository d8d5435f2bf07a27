"""Sensors of the DigitalOcean Gradient provider."""
