"""Pipelines: what a job does with built objects (a trainer, a module, a datamodule, teachers).
They read no configuration; `distillab.compose` builds what they receive."""
