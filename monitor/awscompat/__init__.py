"""AWS-CLI-compatible one-shot commands (`get-invalidation` and its tenant variant)."""
