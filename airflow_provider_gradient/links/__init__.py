"""Links of the DigitalOcean Gradient provider."""
