"""``diffbench advise``: the verdict rule on synthetic measurements, the target's checks, and
the command end to end on a tiny budget."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffbench.advice.target import ladder
from diffbench.advice.verdict import (
    AUTOMATIC,
    Method,
    break_even,
    choose,
    scaling,
    textbook,
    verdict_text,
)
from diffbench.cli import app
from diffbench.results import read_rows

runner = CliRunner()
EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "my_cases.py"


def method(backend, digits, time_s, setup_s=0.0, status="ok", **extra):
    return Method(backend=backend, status=status, digits=digits, time_s=time_s,
                  setup_s=setup_s, **extra)


# the rule, on synthetic measurements

def test_the_cheapest_within_one_digit_of_the_best_is_chosen():
    methods = [method("reverse", 15.8, 3e-4), method("jax", 15.0, 1e-4),
               method("central", 8.8, 5e-5), method("sympy", 15.9, 2e-4)]
    verdict = choose(methods)
    assert verdict.choice.backend == "jax"
    assert verdict.best_digits == 15.9
    assert {m.backend for m in verdict.accurate} == {"reverse", "jax", "sympy"}
    assert verdict.cheapest.backend == "central"  # cheaper, but 7 digits short


def test_the_margin_is_one_digit_inclusive():
    at_margin = choose([method("a", 15.0, 1.0), method("b", 14.0, 0.5)])
    assert at_margin.choice.backend == "b"
    beyond = choose([method("a", 15.0, 1.0), method("b", 13.99, 0.5)])
    assert beyond.choice.backend == "a"


def test_failed_methods_are_not_chosen_and_none_measured_is_no_choice():
    methods = [method("sympy", None, None, status="timeout"), method("reverse", 15.0, 1e-3),
               method("jax", None, None, status="error")]
    assert choose(methods).choice.backend == "reverse"
    nothing = choose([method("sympy", None, None, status="timeout")])
    assert nothing.choice is None
    assert "no method produced a gradient" in verdict_text(nothing, [])


def test_without_a_reference_every_measured_method_counts_as_accurate():
    verdict = choose([method("reverse", None, 2e-3), method("central", None, 1e-3)])
    assert verdict.best_digits is None
    assert verdict.choice.backend == "central"


def test_calls_make_a_one_off_cost_count():
    jax, reverse = method("jax", 15.8, 1e-4, 0.2501), method("reverse", 15.8, 3e-4, 1e-5)
    assert choose([jax, reverse]).choice.backend == "jax"  # per gradient
    assert choose([jax, reverse], calls=100).choice.backend == "reverse"
    assert choose([jax, reverse], calls=100_000).choice.backend == "jax"
    pays = break_even(jax, reverse)
    assert pays == math.ceil((0.2501 - 1e-5) / 2e-4)
    assert choose([jax, reverse], calls=pays).choice.backend == "jax"
    assert choose([jax, reverse], calls=pays - 1).choice.backend == "reverse"


def test_break_even_is_the_first_call_count_at_which_the_total_is_no_more():
    baseline = method("reverse", 15.8, 3e-4, 1e-5)
    for other in (method("jax", 15.8, 1e-4, 0.3), method("sympy", 15.8, 2.9e-4, 1.7),
                  method("torch", 15.8, 5e-4, 0.0), method("a", 15.8, 1e-4, 0.0)):
        pays = break_even(other, baseline)
        if pays is None:
            assert all(other.total_s(k) > baseline.total_s(k) for k in (1, 10**3, 10**9))
        else:
            assert other.total_s(pays) <= baseline.total_s(pays)
            assert pays == 1 or other.total_s(pays - 1) > baseline.total_s(pays - 1)
            assert other.total_s(10 * pays) <= baseline.total_s(10 * pays)


def test_the_verdict_text_states_the_figures_of_its_rows():
    methods = [method("reverse", 15.8, 3.1e-4, omega=3.1), method("central", 8.8, 6.51e-2),
               method("sympy", 15.8, 4.0e-4, 1.2)]
    text = verdict_text(choose(methods), methods)
    assert text.startswith("use reverse mode (diffbench.ad): 15.8 digits, 310 µs per gradient "
                           "(ω 3.1); central differences would cost 210× more per gradient "
                           "and lose 7.0 digits; SymPy's one-off cost is 1.2 s and it never "
                           "pays off against it")


def test_the_verdict_text_with_calls_and_one_off_costs():
    methods = [method("reverse", 15.8, 3.1e-4), method("jax", 15.8, 1e-4, 0.25),
               method("sympy", 15.8, 0.5e-4, 1.2)]
    text = verdict_text(choose(methods), methods)
    assert text.startswith("use SymPy: 15.8 digits, 50 µs per gradient, 1.2 s one-off; its "
                           "one-off cost pays off against reverse mode (diffbench.ad) after "
                           f"{math.ceil(1.2 / 2.6e-4)} calls")
    few = choose(methods, calls=2000)
    assert few.choice.backend == "jax"
    text = verdict_text(few, methods)
    assert "for 2000 calls" in text
    assert "SymPy's one-off cost is 1.2 s and it pays off after 1.9·10^4 calls" in text


def test_finite_differences_chosen_are_not_compared_with_themselves():
    methods = [method("central", 15.0, 1e-5), method("reverse", 15.8, 1e-4),
               method("numdifftools", 15.2, 1e-3)]
    text = verdict_text(choose(methods), methods)
    assert text == ("use central differences: 15.0 digits, 10 µs per gradient; the most "
                    "accurate, reverse mode (diffbench.ad), gives 15.8 digits at 10× the time "
                    "per gradient")


def test_a_failed_symbolic_method_is_named_in_the_verdict():
    methods = [method("reverse", 15.8, 3e-4),
               method("sympy", None, None, status="timeout",
                      message="stopped after 5.0 s, at the budget of 5 s (timing.budget_s)")]
    text = verdict_text(choose(methods), methods)
    assert "SymPy gave no gradient (timeout: stopped after 5.0 s, at the budget of 5 s)" in text


# the textbook's branch

def test_small_n_and_symbolic_chosen_agrees_with_the_textbook():
    methods = [method("sympy", 15.9, 1e-6, 0.05), method("reverse", 15.9, 1e-4)]
    book = textbook(10, choose(methods), methods)
    assert book.expects == "symbolic" and book.agrees


def test_small_n_with_symbolic_failing_disagrees_and_says_why():
    methods = [method("sympy", None, None, status="timeout", message="stopped after 5 s"),
               method("reverse", 15.9, 1e-4)]
    book = textbook(1, choose(methods), methods)
    assert not book.agrees
    assert any("SymPy gave no gradient (timeout" in reason for reason in book.reasons)


def test_symbolic_swell_over_depth_is_a_reason():
    rows = [method("sympy", 15.0, 1e-5 * d, size=d, n_inputs=1, expr_nodes=10 * 2.0**d)
            for d in (5, 10)] + [method("jax", 15.0, 1e-6, size=d, n_inputs=1) for d in (5, 10)]
    scaled = scaling(rows, None, "depth")
    here = [m for m in rows if m.size == 10]
    book = textbook(1, choose(here), here, scaled)
    assert not book.agrees
    assert any("swells ×2.00 per unit of depth" in reason for reason in book.reasons)


def test_large_n_with_finite_differences_dearer_than_ad_disagrees_with_half_the_branch():
    methods = [method("reverse", 15.8, 3e-4), method("central", 8.8, 6e-2)]
    book = textbook(1000, choose(methods), methods)
    assert book.expects == AUTOMATIC and not book.agrees
    assert any("finite differences are no cheaper here" in r for r in book.reasons)
    cheap_fd = [method("reverse", 15.8, 3e-4), method("central", 8.8, 1e-4)]
    assert textbook(1000, choose(cheap_fd), cheap_fd).agrees
    no_ad = [method("reverse", None, None, status="error"), method("central", 8.8, 1e-4)]
    book = textbook(1000, choose(no_ad), no_ad)
    assert not book.agrees
    assert book.reasons == ("no automatic differentiation method produced a gradient",)


# sizes

def test_the_advice_per_size_and_where_it_changes():
    rows = []
    for n in (10, 1000):
        rows += [method("a", 15.0, 1e-6 * n**2, size=n, n_inputs=n),
                 method("b", 15.0, 1e-4 * n, size=n, n_inputs=n)]
    scaled = scaling(rows, None, "n")
    assert scaled.winners == ((10, "a"), (1000, "b"))
    (change,) = scaled.changes
    assert (change.before, change.after) == ("a", "b")
    assert change.near == pytest.approx(100.0)
    exponents = {e.backend: e.value for e in scaled.exponents if e.metric == "time_s"}
    assert exponents == pytest.approx({"a": 2.0, "b": 1.0})


def test_no_ranking_change_where_a_method_was_not_measured_at_both_sizes():
    rows = [method("b", 15.0, 1e-4, size=10, n_inputs=10),
            method("a", None, None, status="skipped", size=10, n_inputs=10),
            method("a", 15.0, 1e-5, size=100, n_inputs=100),
            method("b", 15.0, 1e-4, size=100, n_inputs=100)]
    scaled = scaling(rows, None, "n")
    assert scaled.winners == ((10, "b"), (100, "a"))
    assert scaled.changes == ()


def test_ladder():
    assert ladder(1000, 10, 2) == (100, 1000, 10000)
    assert ladder(10, 2, 1) == (5, 10, 20)
    assert ladder(3, 10, 1) == (3, 30, 300)
    assert ladder(2, 10, 2) == (2, 20, 200)


def test_a_row_as_read_from_the_csv():
    row = {"backend": "jax", "variant": "default", "status": "ok", "message": "", "size": "10",
           "n_inputs": "10", "digits": "15.8", "time_s": "1e-4", "setup_s": "0.25",
           "omega": "1.7", "reference_same_engine": "False", "samples": "5", "expr_nodes": ""}
    m = Method.from_row(row)
    assert (m.size, m.digits, m.time_s, m.setup_s, m.samples) == (10, 15.8, 1e-4, 0.25, 5)
    assert m.expr_nodes is None and m.measured


# bad targets: one message naming what is wrong, exit status 2, nothing run

@pytest.mark.parametrize(("args", "message"), [
    (["rosenbrok"], "no such built-in family (did you mean 'rosenbrock'?"),
    (["nope.py:fn", "--point", "1"], "does not exist"),
    ([f"{EXAMPLE}:wiggle"], "a custom function needs its point"),
    ([f"{EXAMPLE}:wiggle", "--point", "0.3,a"], "--point '0.3,a': expected numbers"),
    ([f"{EXAMPLE}:wiggle", "--point", "1,inf"], "x[1] = inf is not a finite number"),
    ([f"{EXAMPLE}:nothing", "--point", "1,2"], "has no function 'nothing'"),
    ([f"{EXAMPLE}:wiggle", "--point", "1,2", "--size", "3"], "--size is for built-in"),
    (["rosenbrock", "--point", "1,2"], "--point: rosenbrock is a built-in family"),
    (["exp", "--size", "3"], "--size: exp is a fixed family"),
    (["rosenbrock", "--size", "1"], "--size 1: rosenbrock needs n >= 2"),
    (["rosenbrock", "--scale"], "--scale is for custom functions"),
    (["rosenbrock", "--calls", "0"], "--calls 0"),
    (["rosenbrock", "--budget", "0"], "--budget 0"),
    (["rosenbrock", "--backends", "centrl"], "unknown backend 'centrl' (did you mean"),
    ([f"{EXAMPLE}:wiggle", "--point", "1", "--point-file", "x.npy"], "use one"),
    ([f"{EXAMPLE}:wiggle", "--point-file", "x.txt"], "expected a .npy file"),
])
def test_bad_targets_are_one_message_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["advise", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "results").exists()


def test_a_custom_function_is_checked_as_a_config_checks_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(
        "import numpy as np\n"
        "def numpy_only(x, ops):\n    return np.sum(np.sin(x))\n"
        "def raises(x, ops):\n    raise ValueError('bad x')\n")
    result = runner.invoke(app, ["advise", "mine.py:numpy_only", "--point", "1,2"])
    assert result.exit_code == 2 and "works on numpy arrays but not on traced" in result.output
    result = runner.invoke(app, ["advise", "mine.py:raises", "--point", "1,2"])
    assert result.exit_code == 2 and "raised ValueError: bad x" in result.output


# end to end, on a tiny budget

def _advise(tmp_path, *args):
    out = tmp_path / "run"
    result = runner.invoke(app, ["advise", *args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), out


def _check_verdict_matches_its_table(advice):
    """The recommended method is the cheapest, per gradient or in total for --calls, among
    the rows within one digit of the best."""
    rows = [r for r in advice["methods"] if r["status"] == "ok"]
    best = max(r["digits"] for r in rows)
    accurate = [r for r in rows if r["digits"] >= best - 1]
    key = "time_s" if advice["calls"] is None else "total_s"
    expected = min(accurate, key=lambda r: r[key])
    assert advice["verdict"]["backend"] == expected["backend"]
    assert {r["backend"] for r in accurate} == set(advice["verdict"]["accurate"])
    assert all(r["accurate"] == (r in accurate) for r in rows)


def test_a_sized_family_end_to_end(tmp_path):
    advice, out = _advise(tmp_path, "rosenbrock", "--size", "20", "--backends",
                          "central,reverse", "--budget", "8")
    assert (advice["family"], advice["size"], advice["n_inputs"]) == ("rosenbrock", 20, 20)
    _check_verdict_matches_its_table(advice)
    assert advice["verdict"]["backend"] == "reverse"  # 5 more digits than central
    assert advice["scaling"]["sizes"] == [2, 20, 200]
    assert advice["wall_s"] <= advice["budget_s"]
    assert advice["textbook"]["expects"] == "symbolic" and not advice["textbook"]["agrees"]
    rows = read_rows(out / "scaling.csv")
    assert {(r["size"], r["backend"]) for r in rows} >= {("20", "central"), ("20", "reverse")}
    assert json.loads((out / "advice.json").read_text()) == advice
    report = runner.invoke(app, ["report", str(out)])
    assert report.exit_code == 0 and "scaling study" in report.output


def test_calls_weigh_the_one_off_cost_end_to_end(tmp_path):
    advice, _ = _advise(tmp_path, "rosenbrock", "--size", "10", "--backends",
                        "central,reverse", "--budget", "6", "--calls", "7")
    assert advice["calls"] == 7
    assert all(r["total_s"] == pytest.approx(r["one_off_s"] + 7 * r["time_s"])
               for r in advice["methods"] if r["status"] == "ok")
    _check_verdict_matches_its_table(advice)


def test_a_custom_function_end_to_end_with_a_failing_backend(tmp_path):
    (tmp_path / "mine.py").write_text(
        "def no_symbols(x, ops):\n"
        "    if 'sympy' in type(x[0]).__module__:\n"
        "        raise TypeError('no symbols here')\n"
        "    return ops.sum(ops.sin(x) * x)\n")
    advice, out = _advise(tmp_path, f"{tmp_path / 'mine.py'}:no_symbols", "--point",
                          "0.3,-1.2,2", "--backends", "central,reverse,sympy", "--budget", "8")
    by_backend = {r["backend"]: r for r in advice["methods"]}
    assert by_backend["sympy"]["status"] == "error"
    assert "no symbols here" in by_backend["sympy"]["message"]
    assert advice["verdict"]["backend"] == "reverse"
    _check_verdict_matches_its_table(advice)
    assert advice["scaling"] is None and (out / "gradient.csv").exists()
    assert any("SymPy gave no gradient (error" in r for r in advice["textbook"]["reasons"])


def test_the_example_function_scaled_and_printed(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["advise", f"{EXAMPLE}:wiggle", "--point", "0.3,-1.2,2",
                                 "--scale", "--backends", "central,reverse", "--budget", "8",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("verdict: use ")
    for part in ("evidence: ", "time per gradient at each size", "textbook: n = 3 < 100",
                 "how each figure is measured"):
        assert part in result.output
    advice = json.loads((out / "advice.json").read_text())
    assert advice["scaling"]["sizes"] == [3, 30, 300]
    _check_verdict_matches_its_table(advice)


def test_a_point_file(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.array([0.3, -1.2, 2.0]))
    advice, _ = _advise(tmp_path, f"{EXAMPLE}:wiggle", "--point-file", str(tmp_path / "x.npy"),
                        "--backends", "reverse", "--budget", "5")
    assert advice["n_inputs"] == 3 and advice["verdict"]["backend"] == "reverse"


# the run's deadline, which advise's budget is

SLOW = """
import time

calls = 0

def slow_later(x, ops):
    global calls
    if type(x).__module__ == "numpy" and x.dtype == float:  # numpy's f, not the engine's
        calls += 1
        if calls > 1:  # after the config's check
            time.sleep(30)
    return ops.sum(x * x)


def slow_reference(x, ops):
    if type(x).__module__ == "numpy" and x.dtype == object:  # the reference's mpmath numbers
        time.sleep(30)
    return ops.sum(x * x)
"""


def _tiny_config(tmp_path, family="rosenbrock"):
    (tmp_path / "slow.py").write_text(SLOW)
    (tmp_path / "c.toml").write_text(f"""
[timing]
min_sample_s = 0.001
repeats = 2
[families.slow]
function = "slow.py:slow_later"
point = [1.0, 2.0]
[families.slow_reference]
function = "slow.py:slow_reference"
point = [1.0, 2.0]
[[study]]
kind = "gradient"
families = ["{family}"]
sizes = [3]
backends = ["central"]
""")
    from diffbench.studies import load_config

    return load_config(tmp_path / "c.toml")


def test_no_case_is_begun_once_the_deadline_has_passed(tmp_path):
    import time

    from rich.console import Console

    from diffbench.runner import RunOptions, run

    statuses = run(_tiny_config(tmp_path), tmp_path / "run", Console(quiet=True),
                   RunOptions(quiet=True, stop_at=time.monotonic() - 1, stop_key="the budget"))
    assert statuses == {"skipped": 1}
    (row,) = read_rows(tmp_path / "run" / "gradient.csv")
    assert row["message"] == "not attempted: the time of the budget was spent"


def test_a_case_begun_before_the_deadline_gets_only_the_time_left(tmp_path):
    import time

    from rich.console import Console

    from diffbench.runner import RunOptions, run

    started = time.monotonic()
    run(_tiny_config(tmp_path, "slow"), tmp_path / "run", Console(quiet=True),
        RunOptions(quiet=True, stop_at=started + 1.5, stop_key="the budget"))
    assert time.monotonic() - started < 5  # not the config's 60 s
    (row,) = read_rows(tmp_path / "run" / "gradient.csv")
    assert row["status"] == "timeout"
    assert "(the time left of the budget)" in row["message"]


def test_a_reference_is_cut_at_the_deadline_too(tmp_path):
    import time

    from rich.console import Console

    from diffbench.runner import RunOptions, run

    started = time.monotonic()
    run(_tiny_config(tmp_path, "slow_reference"), tmp_path / "run", Console(quiet=True),
        RunOptions(quiet=True, stop_at=started + 1.5, stop_key="the budget", use_cache=False))
    assert time.monotonic() - started < 5
    (row,) = read_rows(tmp_path / "run" / "gradient.csv")
    assert row["status"] == "skipped"
    assert row["message"] == "not attempted: the time of the budget was spent on its reference"


def test_a_family_with_options(tmp_path):
    advice, out = _advise(tmp_path, "sin_tanh_chain:depth=16", "--size", "4", "--backends",
                          "reverse", "--budget", "6")
    assert (advice["family"], advice["target"]) == ("sin_tanh_chain_depth16",
                                                    "sin_tanh_chain:depth=16")
    config = (out / "advise.toml").read_text()
    assert 'families = [{ name = "sin_tanh_chain", depth = 16 }]' in config
    assert advice["verdict"]["backend"] == "reverse"


@pytest.mark.parametrize(("target", "message"), [
    ("sin_tanh_chain:width=3", "'sin_tanh_chain' has no option 'width' (valid: depth)"),
    ("sin_tanh_chain:depth=0", "option 'depth' must be in [1, 100000], got 0"),
    ("sin_tanh_chain:depth=x", "option 'depth' must be an integer, got str 'x'"),
    ("rosenbrock:depth=3", "'rosenbrock' has no option 'depth' (valid: none)"),
])
def test_bad_family_options(tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["advise", target])
    assert result.exit_code == 2 and message in result.output
