"""CloudFront invalidation monitor: polls, records transitions, exports metrics."""

__version__ = "0.1.0"
