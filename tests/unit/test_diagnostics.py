"""Parsing cue's error output into diagnostics, and tidying them for people."""

from __future__ import annotations

from pequod.cue.diagnostics import Diagnostic, SourcePosition, parse_cue_errors
from pequod.cue.errors import tidy

CUE_STDERR = """input.spec.port: conflicting values 8080 and 70000:
    ./input.cue:5:31
    -:1:73
    --expression:1:9
input.spec.port: invalid value 70000 (out of bound <=65535):
    ./input.cue:5:20
    -:1:73
input.spec.port: 2 errors in empty disjunction::
    --expression:1:9
expected operand, found '}':
    ./module.cue:5:1
"""


def test_parse_splits_errors_with_paths_and_positions() -> None:
    parsed = parse_cue_errors(CUE_STDERR)
    assert [d.path for d in parsed] == [
        "input.spec.port",
        "input.spec.port",
        "input.spec.port",
        "",
    ]
    assert parsed[1].message == "invalid value 70000 (out of bound <=65535)"
    assert parsed[1].positions[0] == SourcePosition("input.cue", 5, 20)
    assert parsed[3].message == "expected operand, found '}'"
    assert str(parsed[3]) == "module.cue:5:1: expected operand, found '}'"


def test_tidy_keeps_the_specific_error_of_a_disjunction() -> None:
    tidied = tidy(parse_cue_errors(CUE_STDERR), strip_prefixes=("input.",))
    assert [str(d) for d in tidied] == [
        "input.cue:5:20: spec.port: invalid value 70000 (out of bound <=65535)",
        "module.cue:5:1: expected operand, found '}'",
    ]


def test_tidy_folds_enum_conflicts_into_one_line() -> None:
    conflicts = [
        Diagnostic('conflicting values "web" and "db"', "spec.tier"),
        Diagnostic('conflicting values "api" and "db"', "spec.tier"),
        Diagnostic("2 errors in empty disjunction:", "spec.tier"),
    ]
    assert [d.message for d in tidy(conflicts)] == ['"db" is not allowed (allowed: "web", "api")']


def test_tidy_explains_missing_values_and_drops_duplicates() -> None:
    missing = Diagnostic('incomplete value =~"^[a-z]+$"', "spec.image")
    assert [d.message for d in tidy([missing, missing])] == [
        'a required value is missing (incomplete value =~"^[a-z]+$")'
    ]
