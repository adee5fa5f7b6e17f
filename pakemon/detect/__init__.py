"""Detect stage: rule base, rule tree and matching."""
