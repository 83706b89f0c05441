"""``diffbench explain``: the numbers of the worked examples, local derivatives from the engine,
the path cap, valid Mermaid, and one clear message for bad input."""

import math
import re
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.explain import ExplainError, explain, parse_point
from diffbench.explain.graph import Node
from diffbench.explain.parse import FUNCTIONS
from diffbench.explain.paths import count_paths
from diffbench.ops import ARITY
from diffbench.report.mermaid import mermaid_flowchart

runner = CliRunner()
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
NODE = re.compile(rf'^    (?P<id>{IDENTIFIER})\["[^"]*"\]$')
EDGE = re.compile(rf'^    (?P<a>{IDENTIFIER}) -->(\|"[^"]*"\|)? (?P<b>{IDENTIFIER})$')


def _nested_squares(depth: int) -> str:
    """``x`` multiplied by itself, nested ``depth`` times: 2**depth paths from x."""
    text = "x"
    for _ in range(depth):
        text = f"({text})*({text})"
    return text


def test_affine_square_gives_42_and_28_three_ways():
    explanation = explain("(a*b + 1)**2", {"a": 2.0, "b": 3.0})
    assert explanation.value == 49.0
    got = {e.name: (e.total, e.path_sum, e.engine, e.symbolic.value)
           for e in explanation.inputs}
    assert got == {"a": (1, 42.0, 42.0, 42.0), "b": (1, 28.0, 28.0, 28.0)}
    (path,) = explanation.inputs[0].paths
    assert path.factors == (3.0, 1.0, 14.0)


def test_two_paths_of_theta_sum_to_two_theta_plus_two():
    explanation = explain("theta**2 + 2*theta", {"theta": 1.5})
    (theta,) = explanation.inputs
    assert sorted(path.product for path in theta.paths) == [2.0, 3.0]
    assert (theta.total, theta.path_sum, theta.engine, theta.symbolic.value) == (2, 5, 5, 5)
    assert theta.symbolic.formula == "2*theta + 2"


@pytest.mark.parametrize("x", [1.0, 0.7, 2.5])
def test_log_sin_against_sympy_and_the_closed_form(x):
    explanation = explain("log(x**3 * sin(x))", {"x": x})
    (entry,) = explanation.inputs
    closed_form = 3.0 / x + math.cos(x) / math.sin(x)
    for value in (entry.path_sum, entry.engine, entry.symbolic.value):
        assert value == pytest.approx(closed_form, rel=1e-14)
    assert entry.total == 2


def test_local_derivatives_and_backward_steps_come_from_the_engine():
    explanation = explain("sin(x) * y", {"x": 0.3, "y": -2.0})
    nodes = {node.label: node for node in explanation.nodes}
    assert nodes["sin(x)"].local == (math.cos(0.3),)
    assert nodes["sin(x) * y"].local == (-2.0, math.sin(0.3))
    for step in explanation.trace.steps:
        assert step.contribution == pytest.approx(step.cotangent * step.local, rel=1e-15)
    inputs = {e.name: e for e in explanation.inputs}
    for name, index in explanation.trace.inputs.items():
        assert explanation.trace.cotangents[index] == inputs[name].engine


def test_every_function_and_alias_matches_sympy():
    text = ("tan(x) + exp(y)/cos(x) - log1p(y) * expm1(x) + sqrt(y) * tanh(x) + atan(x*y) "
            "+ Abs(x - y) + Max(x, y) + min(x, 2*y) - pi * x^3")
    explanation = explain(text, {"x": 0.4, "y": 1.3})
    for entry in explanation.inputs:
        assert entry.engine == pytest.approx(entry.symbolic.value, rel=1e-13)
        assert entry.path_sum == pytest.approx(entry.engine, rel=1e-13)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_of_the_op_list_is_explained(name):
    """The engine's, SymPy's and the paths' derivative of each function, at a smooth point."""
    text = f"{name}(x)" if ARITY[name] == 1 else f"{name}(x, 2*x - 1)"
    entry, = explain(text, {"x": 0.4}).inputs
    assert entry.engine == pytest.approx(entry.symbolic.value, rel=1e-14)
    assert entry.path_sum == pytest.approx(entry.engine, rel=1e-14)


def test_kinks_and_infinite_derivatives_follow_each_convention():
    (kink,) = explain("abs(x) + Max(x, 0)", {"x": 0.0}).inputs
    assert (kink.engine, kink.symbolic.value) == (0.0, 0.5)  # sign(0) + Heaviside(0) = 1/2
    (root,) = explain("sqrt(x) + x", {"x": 0.0}).inputs
    assert root.engine == math.inf and root.symbolic.value is None


def test_paths_are_capped_and_counted_exactly():
    explanation = explain(_nested_squares(7), {"x": 1.01}, max_paths=64)
    (entry,) = explanation.inputs
    assert (len(entry.paths), entry.total, entry.capped) == (64, 128, True)
    assert entry.engine == pytest.approx(128 * 1.01**127, rel=1e-13)
    assert entry.path_sum < entry.engine


def test_count_paths_on_a_shared_graph():
    """y = x * x squared k times shares every value: 2**k paths through k + 1 records."""
    nodes = [Node(0, "input", "x", 1.0)]
    for k in range(1, 41):
        nodes.append(Node(k, "multiply", f"y{k}", 1.0, (k - 1, k - 1), (1.0, 1.0)))
    assert count_paths(nodes, 0, 40) == 2**40


def test_cli_reports_the_cap():
    result = runner.invoke(app, ["explain", _nested_squares(7), "--at", "x=1.01",
                                 "--max-paths", "10"])
    assert result.exit_code == 0, result.output
    assert "capped: the first 10 of 128 paths (--max-paths 10)" in result.output


def test_cli_prints_the_worked_example():
    result = runner.invoke(app, ["explain", "theta**2 + 2*theta", "--at", "theta=1.5"])
    assert result.exit_code == 0, result.output
    assert "sum over 2 paths = 5" in result.output
    assert "backward pass" in result.output and "2*theta + 2" in result.output


@pytest.mark.parametrize("text,point", [
    ("(a*b + 1)**2", "a=2,b=3"),
    ("theta**2 + 2*theta", "theta=1.5"),
    ("log(end**3 * sin(end)) + graph * end", "end=1,graph=2"),
    (_nested_squares(3), "x=1.5"),
])
def test_mermaid_is_a_valid_flowchart(text, point):
    result = runner.invoke(app, ["explain", text, "--at", point, "--mermaid"])
    assert result.exit_code == 0, result.output
    first, *lines = result.output.splitlines()
    assert first == "flowchart LR"
    defined, edges = set(), []
    for line in lines:
        node, edge = NODE.match(line), EDGE.match(line)
        assert node or edge, line
        if node:
            defined.add(node["id"])
        else:
            edges.append((edge["a"], edge["b"]))
    assert edges and {i for edge in edges for i in edge} <= defined
    assert len(defined) == len(explain(text, parse_point(point)).nodes)


def test_mermaid_escapes_quotes():
    explanation = explain("x * 2", {"x": 1.0})
    x, product = explanation.nodes
    quoted = replace(explanation, trace=replace(
        explanation.trace, nodes=(x, replace(product, label='say "x"'))))
    assert 'say #quot;x#quot;' in mermaid_flowchart(quoted)


@pytest.mark.parametrize("args,message", [
    (["a*", "--at", "a=1"], "cannot parse 'a*'"),
    (["a*b", "--at", "a=1"], "no value for b"),
    (["a*b"], "no value for a, b"),
    (["a", "--at", "a=1,b=2"], "--at gives b"),
    (["a", "--at", "a2"], "--at expects name=value pairs"),
    (["a", "--at", "a=two"], "'two' is not a number"),
    (["a", "--at", "a=1,a=2"], "--at gives a twice"),
    (["foo(a)", "--at", "a=1"], "unknown function 'foo'"),
    (["sin(a, a)", "--at", "a=1"], "sin takes 1 argument"),
    (["a.real", "--at", "a=1"], "unsupported syntax: a.real"),
    (["a // 2", "--at", "a=1"], "unsupported operator"),
    (["__import__('os').getcwd()"], "unknown function"),
    (["log(a)", "--at", "a=-1"], "log(a) = nan at this point"),
    (["2**10**10 * a", "--at", "a=1"], "too large for float64"),
    (["3 + 4"], "has no variables"),
    (["+".join(["x"] * 3000), "--at", "x=1"], "nested too deeply"),
])
def test_bad_input_is_one_message_and_status_2(args, message):
    result = runner.invoke(app, ["explain", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, ExplainError)


def test_caret_is_a_power_with_its_precedence():
    explanation = explain("x^3 + 1", {"x": 2.0})
    assert explanation.value == 9.0
    assert explanation.inputs[0].engine == 12.0


@pytest.mark.parametrize("expression,message", [
    ("1" * 400 + " * x", "is too large for float64"),
    ("1e400 * x", "the number '1e400' is too large for float64"),
    ("-" * 100_000 + "x", "nested too deeply"),
    ("(" * 12_500 + "x" + ")" * 12_500, "cannot parse"),
    ("sin(" * 400 + "x" + ")" * 400, "too many nested parentheses"),
])
def test_hostile_expressions_get_a_short_message(expression, message):
    """Huge literals and deep nesting, given as they are (a leading minus is no option):
    one message, status 2, and the message does not repeat the expression."""
    result = runner.invoke(app, ["explain", expression, "--at", "x=2"])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output) < 400


def test_a_leading_minus_is_the_expression_not_an_option():
    result = runner.invoke(app, ["explain", "-x*3", "--at", "x=2"])
    assert result.exit_code == 0 and "f = -6" in result.output


@pytest.mark.parametrize("expression,point,note", [
    ("abs(x)", {"x": 0.0}, "kink: 'abs(x)' is not differentiable here ('x' = 0); its "
                           "one-sided derivatives are −1 and 1"),
    ("maximum(x, 0)", {"x": 0.0}, "kink: 'maximum(x, 0)' is not differentiable here ('x' = "
                                  "'0' = 0)"),
    ("minimum(x, y) * 2", {"x": 1.5, "y": 1.5}, "kink: 'minimum(x, y)'"),
    ("sqrt(x) + x", {"x": 0.0}, "infinite derivative: ∂('sqrt(x)')/∂('x') = inf"),
])
def test_explain_notes_kinks_and_infinite_derivatives(expression, point, note):
    explanation = explain(expression, point)
    assert any(note in line for line in explanation.notes), explanation.notes
    at = ",".join(f"{k}={v}" for k, v in point.items())
    assert note in re.sub(r"\s+", " ", runner.invoke(app, ["explain", expression, "--at", at])
                          .output)


def test_no_note_where_the_expression_is_smooth():
    assert explain("abs(x) + maximum(x, y) + sqrt(x)", {"x": 1.0, "y": 2.0}).notes == ()
