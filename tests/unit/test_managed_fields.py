"""The hand-over of fields after a take-over: what Pequod's apply owns leaves the other
managers' sets, what it does not render stays theirs, status writers are left alone."""

from __future__ import annotations

from typing import Any

from pequod.executor.managed_fields import handed_over, previous_managers


def entry(manager: str, operation: str, fields: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "apps/v1",
        "time": "2026-12-02T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


PEQUOD = entry(
    "pequod",
    "Apply",
    {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}
                },
            },
        },
    },
)
KUBECTL = entry(
    "kubectl-client-side-apply",
    "Update",
    {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:team": {}}},
        "f:spec": {
            "f:replicas": {},
            "f:strategy": {"f:type": {}},
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"web"}': {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:imagePullPolicy": {},
                        }
                    }
                },
            },
        },
    },
)
STATUS = entry(
    "kube-controller-manager", "Update", {"f:status": {"f:replicas": {}}}, subresource="status"
)


def test_what_pequod_renders_leaves_the_other_managers_and_the_rest_stays() -> None:
    result = handed_over([PEQUOD, KUBECTL, STATUS], "pequod")
    assert result is not None
    assert result[0] == PEQUOD
    assert result[2] == STATUS
    assert result[1]["manager"] == "kubectl-client-side-apply"
    assert result[1]["time"] == KUBECTL["time"]
    assert result[1]["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:team": {}}},
        "f:spec": {
            "f:strategy": {"f:type": {}},
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"web"}': {"f:imagePullPolicy": {}}}}
            },
        },
    }


def test_an_entry_left_with_nothing_is_dropped() -> None:
    helm = entry("helm", "Update", {"f:spec": {"f:replicas": {}}})
    assert handed_over([PEQUOD, helm], "pequod") == [PEQUOD]


def test_nothing_shared_asks_for_no_write() -> None:
    other = entry("kubectl-create", "Update", {"f:spec": {"f:paused": {}}})
    assert handed_over([PEQUOD, other, STATUS], "pequod") is None
    assert handed_over([KUBECTL], "pequod") is None  # Pequod applied nothing


def test_a_leaf_against_a_subtree_stays_shared() -> None:
    atomic = entry("other", "Apply", {"f:spec": {"f:template": {}}})
    assert handed_over([PEQUOD, atomic], "pequod") is None


def test_previous_managers_are_those_of_the_main_resource() -> None:
    assert previous_managers([PEQUOD, KUBECTL, STATUS], "pequod") == ["kubectl-client-side-apply"]
