"""Mangled configs, generated: each is either valid or refused naming the file and the key."""

import copy
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.config import ConfigError
from diffbench.studies import load_config

DATA = Path(__file__).parent / "data"

VALID = {
    "name": "fuzz",
    "timing": {"min_sample_s": 0.001, "repeats": 2, "budget_s": 5.0},
    "reference": {"digits": 30, "diff_budget_s": 5.0},
    "families": {"wiggle": {"function": "my_cases.py:wiggle", "point": [0.3, -1.2, 2.0]}},
    "study": [{"kind": "gradient", "families": ["rosenbrock", "wiggle"], "sizes": [3, 5],
               "backends": ["central", {"name": "jax", "jit": False}]}],
}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, repr(value)) \
            if value == value else "nan"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"
    return str(value)


def to_toml(config: dict) -> str:
    """A small TOML writer: inline tables and arrays below the top level."""
    lines = []
    for key, value in config.items():
        if not isinstance(value, dict) and not (key == "study" and isinstance(value, list)
                                                and all(isinstance(v, dict) for v in value)):
            lines.append(f'"{key}" = {toml_value(value)}')
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f'["{key}"]')
            lines.extend(f'"{k}" = {toml_value(v)}' for k, v in value.items())
        elif key == "study" and isinstance(value, list) and all(isinstance(v, dict)
                                                                for v in value):
            for table in value:
                lines.append('[["study"]]')
                lines.extend(f'"{k}" = {toml_value(v)}' for k, v in table.items())
    return "\n".join(lines) + "\n"


def paths(node, prefix=()):
    """Every (path, value) in the config tree, tables and lists included."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


def dotted(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def copy_with(config, path, action, value=None):
    """A copy of ``config`` with the value at ``path`` replaced or deleted, or (``"add"``)
    with a key ``value`` added to the table at ``path``."""
    result = copy.deepcopy(config)
    node = result
    for part in path[:-1]:
        node = node[part]
    if action == "replace":
        node[path[-1]] = value
    elif action == "delete":
        del node[path[-1]]
    else:
        (node[path[-1]] if path else result)[value] = 1
    return result


WRONG = st.one_of(
    st.integers(-10, 10), st.floats(allow_nan=True),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=6), st.booleans(),
    st.lists(st.integers(-3, 3), max_size=3), st.just([]), st.just({}),
)
LEAVES = [(p, v) for p, v in paths(VALID) if p]
TABLES = [p for p, v in paths(VALID) if p and isinstance(v, dict)]


def write(tmp_path: Path, text: str) -> Path:
    shutil.copy(DATA / "my_cases.py", tmp_path / "my_cases.py")
    path = tmp_path / "fuzz.toml"
    path.write_text(text)
    return path


def outcome(tmp_path, config: dict) -> str | None:
    path = write(tmp_path, to_toml(config))
    try:
        load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: "), message
        return message
    return None


fuzz = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz
@given(leaf=st.sampled_from(LEAVES), value=WRONG)
def test_a_replaced_value_is_valid_or_named(tmp_path, leaf, value):
    path, _ = leaf
    message = outcome(tmp_path, copy_with(VALID, path, "replace", value))
    if message is not None:
        assert dotted(path) in message or dotted(path[:-1]) in message, (path, message)


@fuzz
@given(leaf=st.sampled_from(LEAVES))
def test_a_deleted_key_is_valid_or_named(tmp_path, leaf):
    path, _ = leaf
    message = outcome(tmp_path, copy_with(VALID, path, "delete"))
    if message is not None:
        assert dotted(path[:-1]) in message or dotted(path) in message, (path, message)


@fuzz
@given(table=st.sampled_from(TABLES),
       key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10))
def test_an_unknown_key_is_named(tmp_path, table, key):
    parent = VALID
    for part in table:
        parent = parent[part]
    if key in parent or table == ("families",):
        return  # a new table under [families] is a (bad) family, checked elsewhere
    message = outcome(tmp_path, copy_with(VALID, table, "add", key))
    assert message is not None and dotted((*table, key)) in message, message


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_text_exits_2_without_traceback(tmp_path, data):
    text = to_toml(VALID)
    position = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(alphabet='[]{}="\n,.#x1-', min_size=1, max_size=4))
    path = write(tmp_path, text[:position] + junk + text[position:])
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert str(path) in result.output


def test_the_unmangled_config_is_valid(tmp_path):
    assert outcome(tmp_path, VALID) is None
