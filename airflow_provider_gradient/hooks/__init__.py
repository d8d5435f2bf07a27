"""Hooks of the DigitalOcean Gradient provider."""
