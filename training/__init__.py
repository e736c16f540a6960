"""AST-MFR trainer, evaluator and ONNX exporter (see training/README.md)."""
