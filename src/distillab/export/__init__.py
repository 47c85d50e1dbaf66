"""Deployment export: ONNX graphs of the encoder and one decoder step (fp32 and int8), the
tokenizer and a JSON config in one directory (:func:`distillab.export.onnx.export_model`), and
a runtime that decodes from it with onnxruntime alone (:mod:`distillab.export.runtime`: no
torch import, so this package's ``__init__`` imports nothing)."""
