"""The scaling study: fitted exponents, the skip-after-timeout rule, verdicts, files."""

import numpy as np
import pytest
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.measure.fit import line_fit, loglog_fit
from diffbench.measure.scaling_fit import FIT_COLUMNS, fit_all, fit_metric
from diffbench.report.claims import CLAIMS, verdict, write_claims
from diffbench.results import CsvWriter, read_rows
from diffbench.studies.gradient import COLUMNS

runner = CliRunner()


@pytest.mark.parametrize("exponent", [0.0, 1.0, 1.5, 2.0])
def test_fit_recovers_known_exponents_from_noisy_data(exponent):
    rng = np.random.default_rng(7)
    n = np.geomspace(10, 1e6, 11)
    cost = 3e-7 * n**exponent * np.exp(rng.normal(0, 0.05, n.size))  # 5 % noise
    fit = loglog_fit(n, cost)
    assert fit.slope == pytest.approx(exponent, abs=0.05)
    assert fit.ci[0] < exponent < fit.ci[1]
    assert fit.r2 > 0.95 or exponent == 0.0


def test_fit_ignores_the_fixed_overhead():
    n = np.geomspace(10, 1e6, 11)
    cost = 30e-6 + 1e-8 * n  # a fixed 30 µs, then linear
    points = list(zip(n, cost, strict=True))
    fit = fit_metric(points)
    assert fit["exponent"] == pytest.approx(1.0, abs=0.12)
    assert fit["n_min"] >= 10_000 and not fit["overhead_bound"]
    assert loglog_fit(n, cost).slope < 0.7  # fitting every size would mislead


def test_fit_with_fewer_than_three_sizes_above_overhead_is_flagged():
    fit = fit_metric([(10, 1.0), (100, 1.1), (1000, 1.2), (10000, 1.3)])
    assert fit["overhead_bound"] and fit["points"] == 3


def test_line_fit_interval_and_r2():
    fit = line_fit([0, 1, 2, 3], [1, 3, 5, 7])
    assert fit.slope == pytest.approx(2.0) and fit.r2 == pytest.approx(1.0)
    assert fit.ci[1] - fit.ci[0] == pytest.approx(0.0, abs=1e-9)
    assert line_fit([0, 1], [0, 1]).ci == (-np.inf, np.inf)


@pytest.mark.parametrize("claimed,measured,word", [
    (1, 1.05, "holds"), (1, 0.72, "holds"), (2, 1.5, "off"), (0, 1.0, "wrong"),
    (2, 2.9, "wrong"), (1, None, "n/a"),
])
def test_verdict(claimed, measured, word):
    assert verdict(claimed, measured) == word
    assert verdict(claimed, measured, overhead_bound=True) in ("unclear", "n/a")


def synthetic_scaling(run_dir, exponents):
    """scaling.csv rows whose time grows as n^p for each (backend, variant) given."""
    run_dir.mkdir()
    writer = CsvWriter(run_dir / "scaling.csv", (*COLUMNS, "case", "shard"))
    for (backend, variant), (p_time, p_memory) in exponents.items():
        for n in (100, 1000, 10_000, 100_000):
            writer.write({"study": "scaling", "family": "rosenbrock", "size": n,
                          "n_inputs": n, "backend": backend, "variant": variant,
                          "status": "ok", "time_s": 1e-6 * n**p_time,
                          "peak_bytes": 10.0 * n**p_memory, "f_peak_bytes": 8 * n,
                          "omega": 3.0, "digits": 15.0, "expr_nodes": 4 * n})
    writer.close()


def test_claims_table_from_synthetic_fits(tmp_path):
    run_dir = tmp_path / "run"
    synthetic_scaling(run_dir, {("central", "default"): (2.0, 1.0),
                                ("reverse", "default"): (1.0, 1.0),
                                ("sympy", "default"): (1.0, 0.0)})
    rows = read_rows(run_dir / "scaling.csv")
    fits = {(f["backend"], f["metric"]): f["exponent"] for f in fit_all(rows)}
    assert fits["central", "time_s"] == pytest.approx(2.0)
    assert fits["sympy", "size"] == pytest.approx(1.0)
    from diffbench.results import write_csv

    write_csv(run_dir / "scaling_fit.csv", FIT_COLUMNS, fit_all(rows))
    write_claims(run_dir)
    text = (run_dir / "claims.md").read_text()
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()
             if line.startswith("| ") and "rosenbrock" in line}
    assert "holds" in lines["central differences"].split("|")[5]  # time 2 vs claimed 2
    assert "wrong" in lines["central differences"].split("|")[8]  # memory 1 vs claimed 0
    assert "holds" in lines["native reverse mode"].split("|")[5]
    assert "wrong" in lines["SymPy"].split("|")[5]  # evaluation is O(n), not "O(1)"
    assert "holds" in lines["SymPy"].split("|")[8]  # the expression is O(n)
    assert {c.method for c in CLAIMS} >= {"central differences", "JAX forward (jacfwd)"}


SCALING = """
[timing]
min_sample_s = 0.0005
repeats = 2
budget_s = {budget}
[[study]]
kind = "scaling"
verdict = true
families = ["rosenbrock"]
sizes = [4, 16, 64, 256]
backends = [{backends}]
"""


def test_sizes_after_a_timeout_are_skipped_not_attempted(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(SCALING.format(budget=2.0, backends='"sympy", "reverse"')
                      .replace("[4, 16, 64, 256]", "[4, 16, 3000, 6000, 12000]"))
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(config), "--out", str(out), "-q", "--no-plots"])
    assert result.exit_code == 0, result.output
    sympy = [(r["size"], r["status"]) for r in read_rows(out / "scaling.csv")
             if r["backend"] == "sympy"]
    assert sympy[:2] == [("4", "ok"), ("16", "ok")]
    assert sympy[2] == ("3000", "timeout")
    assert sympy[3:] == [("6000", "skipped"), ("12000", "skipped")]
    skipped = [r for r in read_rows(out / "scaling.csv") if r["status"] == "skipped"]
    assert all("3000 already ended in timeout" in r["message"] for r in skipped)
    assert {r["status"] for r in read_rows(out / "scaling.csv")
            if r["backend"] == "reverse"} == {"ok"}


def test_scaling_run_writes_fits_claims_and_plot(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(SCALING.format(budget=20.0, backends='"central", "reverse", '
                                     '{ name = "jax", mode = "forward" }'))
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    fits = read_rows(out / "scaling_fit.csv")
    assert tuple(fits[0]) == FIT_COLUMNS
    assert {f["metric"] for f in fits} >= {"time_s", "peak_bytes", "f_evals"}
    f_evals = next(f for f in fits if f["backend"] == "central" and f["metric"] == "f_evals")
    assert float(f_evals["exponent"]) == pytest.approx(1.0)
    claims = (out / "claims.md").read_text()
    assert "central differences" in claims and "JAX forward (jacfwd)" in claims
    assert (out / "plots" / "scaling_cost.png").stat().st_size > 10_000
    assert "the textbook table, measured" in result.output
