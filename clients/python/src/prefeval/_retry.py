"""When to retry, and how long to wait first."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Optional

from ._errors import PrefevalConnectionError, PrefevalError

logger = logging.getLogger("prefeval")

#: 503 is the service shedding load (``queue_full``, ``memory_budget``); 502 and 504 come from a
#: proxy or load balancer in front of it that could not reach a replica. Nothing else is retried:
#: a 4xx is the request's fault and fails the same way again, a 500 is a bug.
RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")

    def should_retry(self, error: PrefevalError, attempt: int) -> bool:
        """``attempt`` counts from 0: the first retry follows attempt 0."""
        if attempt >= self.max_retries:
            return False
        if isinstance(error, PrefevalConnectionError):
            return True
        return error.status in RETRY_STATUSES

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """``Retry-After`` when the service gave it (capped at ``max_retry_delay``); otherwise
        exponential backoff, ``backoff_base · 2^attempt`` capped at ``backoff_max``, of which a
        random half is waited (so that clients refused together do not come back together)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_delay)
        ceiling = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def log(self, what: str, error: PrefevalError, attempt: int, delay: float) -> None:
        logger.info(
            "%s failed (%s); retry %d of %d in %.2f s",
            what,
            error,
            attempt + 1,
            self.max_retries,
            delay,
        )
