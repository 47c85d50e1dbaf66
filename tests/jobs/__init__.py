"""Tests for the distillab.jobs package."""
