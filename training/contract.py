"""Constants of the ONNX model contract shared by the exporter and the verifier
(docs/model-contract.md is the human-readable version)."""

OPSET = 17
FORMAT_VERSION = "1"
INPUT_NAME = "image"
OUTPUT_MAP = "anomaly_map"
OUTPUT_SCORE = "score"
BATCH_DIM = "N"
PARITY_TOLERANCE = 1e-4

METADATA_KEYS = (
    "format_version",
    "architecture",
    "input_size",
    "mean",
    "std",
    "category",
    "mask_rate",
    "training_data",
    "score_stats",
    "map_stats",
    "proposed_threshold",
)
JSON_METADATA_KEYS = ("architecture", "input_size", "mean", "std", "training_data", "score_stats", "map_stats")
NUMBER_METADATA_KEYS = ("mask_rate", "proposed_threshold")
