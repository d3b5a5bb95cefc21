"""Front ends: ONNX → Graph (maps ONNX ops onto the catalog's op types); parser layer."""

from openge.parser.onnx_parser import parse_onnx, supported_ops

__all__ = ["parse_onnx", "supported_ops"]
