"""Tests of the developer tooling in scripts/."""
