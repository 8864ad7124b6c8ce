"""Which of our metrics a PromQL expression reads. Enough for rules and dashboards:
it drops strings, label matchers and label lists, and keeps `cloudfront_*` names."""

from __future__ import annotations

import re

from monitor.metrics import exported_metric_names

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAMES = re.compile(r"\bcloudfront_[a-z0-9_]+")
_SAMPLE_SUFFIXES = ("_total", "_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    text = _LABEL_LISTS.sub(" ", _MATCHERS.sub(" ", _STRINGS.sub(" ", expr)))
    return set(_NAMES.findall(text))


def unknown_metrics(expr: str) -> set[str]:
    """Names in `expr` that are neither a family the daemon exports nor one of its samples."""
    families = exported_metric_names()
    unknown = set()
    for name in metric_names(expr):
        stems = [name] + [name.removesuffix(s) for s in _SAMPLE_SUFFIXES if name.endswith(s)]
        if not any(stem in families for stem in stems):
            unknown.add(name)
    return unknown
