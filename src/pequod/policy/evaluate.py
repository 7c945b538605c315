"""Evaluates one policy against an instance and its rendered graph."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from pequod.cue.errors import tidy
from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.graph.model import SEVERITY_ERROR, Violation
from pequod.graph.shape import VIOLATION_SCHEMA
from pequod.module.source import ModuleSource

_VIOLATIONS = jsonschema.Draft202012Validator({"type": "array", "items": VIOLATION_SCHEMA})


class PolicyError(Exception):
    """The policy itself is broken (not a finding about the instance)."""


async def evaluate_policy(
    policy: ModuleSource,
    instance_input: dict[str, Any],
    output: dict[str, Any],
    settings: CueSettings | None = None,
) -> list[Violation]:
    """Unifies ``#Policy`` with ``{input, output}`` and returns its violations.

    A constraint of the policy that the graph does not meet (a unification error) is a violation
    too, with the path and message cue reports.
    """
    document = json.dumps({"input": instance_input, "output": output}).encode()
    try:
        result = await run_cue(
            [
                "export",
                ".",
                "json:",
                "-",
                "-l",
                "pequod_policy:",
                "-e",
                "(#Policy & pequod_policy).violations",
                "--out",
                "json",
            ],
            cwd=policy.directory,
            stdin=document,
            settings=settings,
        )
    except CueError as error:
        if any('reference "#Policy" not found' in d.message for d in error.diagnostics):
            raise PolicyError(f"{policy.reference}: the policy does not define #Policy") from None
        if any("incomplete value" in d.message for d in error.diagnostics):
            raise PolicyError(f"{policy.reference}: violations is not concrete: {error}") from None
        return [
            Violation(d.path or "output", d.message, SEVERITY_ERROR, policy.reference)
            for d in tidy(error.diagnostics)
        ]
    violations = json.loads(result)
    problems = list(_VIOLATIONS.iter_errors(violations))
    if problems:
        raise PolicyError(
            f"{policy.reference}: violations has the wrong shape: {problems[0].message}"
        )
    return [
        Violation(v["path"], v["message"], v.get("severity", SEVERITY_ERROR), policy.reference)
        for v in violations
    ]
