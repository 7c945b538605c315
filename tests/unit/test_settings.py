"""The operator's settings state each default once: ``pequod run`` has exactly one flag per
settings field that names one, with the field's default, and parsing the flags gives back the
settings' defaults (and what a flag says, converted as the field wants it)."""

from __future__ import annotations

import argparse
import collections
import dataclasses

from pequod.cli.run_command import add_setting_flags, settings_of
from pequod.operator.settings import OperatorSettings, setting_flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_setting_flags(parser)
    return parser


def test_every_flagged_field_has_exactly_one_flag() -> None:
    flags = collections.Counter(item.flag for item in setting_flags())
    assert [flag for flag, count in flags.items() if count > 1] == []
    options = [a for a in _parser()._actions if a.option_strings and a.dest != "help"]
    assert sorted(a.option_strings[0] for a in options) == sorted(flags)
    assert sorted(a.dest for a in options) == sorted(item.dest for item in setting_flags())


def test_argparse_defaults_are_the_dataclass_defaults() -> None:
    defaults = OperatorSettings()
    for item in setting_flags():
        section = getattr(defaults, item.section)
        assert _parser().get_default(item.dest) == getattr(section, item.name), item.flag
    assert settings_of(_parser().parse_args([])) == defaults


def test_the_flags_set_their_fields() -> None:
    settings = settings_of(
        _parser().parse_args(
            [
                "--concurrency=3",
                "--resync-period=0",
                "--module-cache-size=2",
                "--module-source-namespaces=a, b",
                "--leader-elect",
                "--kube-api-qps=5.5",
            ]
        )
    )
    assert settings.controllers.instance_concurrency == 3
    assert settings.controllers.resync is None
    assert settings.modules.cache_bytes == 2 * 1024 * 1024
    assert settings.modules.source_namespaces == ("a", "b")
    assert settings.leader_election.enabled is True
    assert settings.client.qps == 5.5
    assert dataclasses.replace(settings.render) == OperatorSettings().render
