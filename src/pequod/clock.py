"""The one clock: the time now, timestamps as Kubernetes writes them (RFC 3339, seconds, UTC)
and the age of such a timestamp."""

from __future__ import annotations

import datetime

_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def timestamp(moment: datetime.datetime | None = None) -> str:
    """``moment`` (default: now) as a metav1.Time: ``2026-12-02T12:00:00Z``."""
    return (moment or utc_now()).strftime(_TIMESTAMP)


def parse_timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, _TIMESTAMP).replace(tzinfo=datetime.UTC)


def age_seconds(text: str) -> float:
    """Seconds since the metav1.Time ``text``."""
    return (utc_now() - parse_timestamp(text)).total_seconds()
