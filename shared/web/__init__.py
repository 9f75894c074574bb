"""The Flask pieces every service's web process shares."""
