"""The `{{ value_json.key }}` fast path renders exactly what Jinja renders."""

from __future__ import annotations

import json

import pytest

from hubagent.mqtt.templates import _simple_path, renderer

CASES = [
    ("{{ value_json.temperature }}", '{"temperature": 21.5}'),
    ("{{value_json['a b'] }}", '{"a b": true}'),
    ('{{ value_json["x"].y }}', '{"x": {"y": null}}'),
    ("{{ value_json.x }}", '{"x": {"y": 1}}'),
    ("{{ value_json.items }}", '{"items": 3}'),
    ("{{ value_json.missing }}", '{"a": 1}'),
    ("{{ value_json.state }}", '"ON"'),
    ("{{ value_json }}", "5"),
    ("{{ value_json.t }}", '{"t": "  on "}'),
    ("{{ value_json.list }}", '{"list": [1, 2]}'),
]


@pytest.mark.parametrize(("source", "payload"), CASES)
def test_fast_path_equals_jinja(source: str, payload: str) -> None:
    assert _simple_path(source) is not None
    full = renderer.render(source, {"value": payload, "value_json": json.loads(payload)}).strip()
    assert renderer.render_value(source, payload) == full


def test_other_templates_are_not_taken_for_simple() -> None:
    assert _simple_path("{{ value_json.t | float }}") is None
    assert _simple_path("{{ value }}") is None
    assert renderer.render_value("{{ value_json.t | float * 2 }}", '{"t": "2"}') == "4.0"
