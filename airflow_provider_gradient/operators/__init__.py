"""Operators of the DigitalOcean Gradient provider."""
