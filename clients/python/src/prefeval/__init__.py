"""A client for prefeval, the service that scores reward models against human rankings.

    from prefeval import Client, lists_from_pairs

    client = Client("http://127.0.0.1:8080")
    result = client.evaluate(lists_from_pairs(chosen_rewards, rejected_rewards))
    print(result.loss, result.summary.accuracy, result.summary.accuracy_ci)

``Client`` and ``AsyncClient`` have the same methods: ``evaluate`` (``/v1/evaluate``),
``evaluate_stream`` and ``evaluate_file`` (``/v1/evaluate/stream``, any size, constant memory) and
``compare`` (``/v1/compare``), ``compare_stream`` and ``compare_file`` (``/v1/compare/stream``),
and ``evaluate_dataset`` (data frames, Arrow and Hugging Face
datasets through the stream), and ``report`` (``/v1/report``: a self-contained HTML report of any
of those); ``merge`` merges summaries of shards locally. Results show their headline figures as
a table in Jupyter. Errors are
:class:`PrefevalError` and its subclasses.
"""

from ._client import AsyncClient, Client
from ._errors import (
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    PrefevalConnectionError,
    PrefevalError,
    PrefevalTimeoutError,
    ProtocolError,
    RequestTimeoutError,
    StreamStoppedError,
    UnprocessableError,
)
from ._helpers import list_from_ranking, lists_from_pairs
from ._merge import MergeError, merge
from ._merge_compare import ComparisonSummary
from ._models import (
    Calibration,
    CalibrationBin,
    CalibrationBinTotals,
    CompareResult,
    CompareStreamItem,
    CompareStreamResult,
    Comparison,
    Disagreement,
    EvaluateResult,
    GroupFigures,
    InputFingerprint,
    Interval,
    LengthFigures,
    LengthTotals,
    LineError,
    ListModelFigures,
    ListResult,
    ModelFigures,
    Pair,
    RunInfo,
    StreamItem,
    StreamResult,
    StreamSummary,
    Summary,
    SummaryDisagreement,
    SummaryGroup,
    Totals,
)
from ._stream import (
    AsyncCompareStream,
    AsyncEvaluateStream,
    AsyncReportStream,
    CompareStream,
    EvaluateStream,
    LineFailedError,
    ReportStream,
)
from ._version import __version__

__all__ = [
    "AsyncClient",
    "AsyncCompareStream",
    "AsyncEvaluateStream",
    "AsyncReportStream",
    "AuthenticationError",
    "BadRequestError",
    "Calibration",
    "CalibrationBin",
    "CalibrationBinTotals",
    "Client",
    "CompareResult",
    "CompareStream",
    "CompareStreamItem",
    "CompareStreamResult",
    "Comparison",
    "Disagreement",
    "EvaluateResult",
    "EvaluateStream",
    "GroupFigures",
    "InputFingerprint",
    "InternalServerError",
    "InvalidInputError",
    "Interval",
    "LengthFigures",
    "LengthTotals",
    "LineError",
    "LineFailedError",
    "ListModelFigures",
    "MergeError",
    "ComparisonSummary",
    "ListResult",
    "ModelFigures",
    "NotFoundError",
    "OverloadedError",
    "Pair",
    "PayloadTooLargeError",
    "PrefevalConnectionError",
    "PrefevalError",
    "PrefevalTimeoutError",
    "ProtocolError",
    "ReportStream",
    "RunInfo",
    "RequestTimeoutError",
    "StreamItem",
    "StreamResult",
    "StreamStoppedError",
    "StreamSummary",
    "Summary",
    "SummaryDisagreement",
    "SummaryGroup",
    "Totals",
    "UnprocessableError",
    "__version__",
    "list_from_ranking",
    "lists_from_pairs",
    "merge",
]
