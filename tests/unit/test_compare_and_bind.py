"""What a dry run reports as changed, and the metrics bind address flag."""

from __future__ import annotations

import pytest

from pequod.executor.compare import changed_fields, up_to_date
from pequod.operator.http_server import parse_bind_address


def test_changed_fields_name_what_the_live_object_lacks() -> None:
    live = {
        "metadata": {"name": "a", "uid": "1", "labels": {"team": "x"}},
        "spec": {"replicas": 2, "template": {"image": "a:1", "pullPolicy": "Always"}},
        "status": {"ready": 1},
    }
    desired = {
        "metadata": {"name": "a", "labels": {"team": "y"}},
        "spec": {"replicas": 3, "template": {"image": "a:1"}},
    }
    assert changed_fields(live, desired) == ["metadata.labels.team", "spec.replicas"]
    assert not up_to_date(live, desired)
    assert changed_fields(live, {"metadata": {"name": "a"}, "spec": {"replicas": 2}}) == []


@pytest.mark.parametrize(
    ("address", "expected"),
    [(":8080", ("0.0.0.0", 8080)), ("127.0.0.1:9090", ("127.0.0.1", 9090)), ("0", None)],
)
def test_bind_address(address: str, expected: tuple[str, int] | None) -> None:
    assert parse_bind_address(address) == expected


def test_bad_bind_address() -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_bind_address("localhost")
