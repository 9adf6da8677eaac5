from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


class ModelType(StrEnum):
    LANGUAGE_MODEL = "language_model"
    EMBEDDING_MODEL = "embedding_model"
    CLASSIFICATION = "classification"
    GENERATION = "generation"
    MULTIMODAL = "multimodal"
    CUSTOM = "custom"


class Framework(StrEnum):
    PYTORCH = "pytorch"
    SAFETENSORS = "safetensors"
    ONNX = "onnx"
    HUGGINGFACE = "huggingface"
    SKLEARN = "sklearn"
    CUSTOM = "custom"


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"
    INT4 = "int4"
    MIXED = "mixed"
    UNKNOWN = "unknown"


class Stage(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"


class Approval(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class DatasetFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


class ModelStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DEPRECATED = "deprecated"


def parse_enum(enum: type[E], value: str, field: str) -> E:
    """Turn user text into an enum member, or raise InvalidInput listing the choices."""
    from modelhub.errors import InvalidInput

    try:
        return enum(value.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in enum)
        raise InvalidInput(
            f"unknown {field} {value!r}; choose one of: {choices}",
            {"field": field, "value": value, "choices": [m.value for m in enum]},
        ) from None
