"""Tests for the distillab.decoding package."""
