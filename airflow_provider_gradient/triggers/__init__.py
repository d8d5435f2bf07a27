"""Triggers of the DigitalOcean Gradient provider."""
