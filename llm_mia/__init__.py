"""llm-mia: membership inference for language models.

Was a text in a model's training data? Scorers read one forward pass per (model, text variant) and give
higher scores to likelier members; calibration and dataset-level tests turn scores into verdicts.

    >>> import llm_mia
    >>> frame = llm_mia.score(["Some text."], model="smollm2-135m")  # doctest: +SKIP
"""

from llm_mia.api import score
from llm_mia.documents import Columns, Document, read_documents
from llm_mia.extract import ExtractionSettings
from llm_mia.models import ModelSpec, load_model
from llm_mia.stats import TokenStats

__version__ = "0.1.0"

__all__ = [
    "Columns",
    "Document",
    "ExtractionSettings",
    "ModelSpec",
    "TokenStats",
    "load_model",
    "read_documents",
    "score",
]
