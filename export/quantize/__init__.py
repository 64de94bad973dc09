"""int8 post-training quantisation of bundles: QDQ ONNX (ORT tools), calibration, accuracy guard."""

from .api import Attempt, format_report, quantize_bundle
from .data import FeedReader, RecordingEngine, read_texts, read_word_crops
from .guard import Check, GuardResult, GuardThresholds
from .qdq import METHODS, quantized_nodes, unshare_qparams

__all__ = [
    "METHODS", "Attempt", "Check", "FeedReader", "GuardResult", "GuardThresholds", "RecordingEngine",
    "format_report", "quantize_bundle", "quantized_nodes", "read_texts", "read_word_crops",
    "unshare_qparams",
]
