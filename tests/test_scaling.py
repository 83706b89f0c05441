"""The scaling study: fitted exponents, the skip-after-timeout rule, verdicts, files."""

import numpy as np
import pytest
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.measure.fit import line_fit, loglog_fit
from diffbench.measure.scaling_fit import EXTRA_BYTES_FLOOR, FIT_COLUMNS, extra_bytes, fit_all
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


def test_fits_model_the_fixed_overhead_of_costs_and_fit_omega_as_a_line():
    n = np.geomspace(10, 1e6, 9)
    rows = [{"family": "f", "backend": "b", "variant": "default", "status": "ok",
             "n_inputs": str(size), "time_s": str(30e-6 + 1e-8 * size),  # 30 µs, then linear
             "omega": str(3.0 * size ** -0.05)} for size in n]
    fits = {f["metric"]: f for f in fit_all(rows)}
    time = fits["time_s"]
    assert time["fit"] == "overhead" and time["exponent"] == pytest.approx(1.0, abs=0.01)
    assert time["ci_low"] <= 1.0 <= time["ci_high"] and time["overhead_share"] > 0.9
    assert loglog_fit(n, 30e-6 + 1e-8 * n).slope < 0.7  # a plain line would mislead
    omega = fits["omega"]
    assert omega["fit"] == "line" and omega["exponent"] == pytest.approx(-0.05)


def test_extra_memory_is_the_methods_own_and_has_a_floor():
    rows = [{"family": "f", "backend": "b", "variant": "default", "status": "ok",
             "n_inputs": str(size), "peak_bytes": str(8 * size + 5000 + 16 * size),
             "f_peak_bytes": str(5000 + 16 * size)} for size in (10, 100, 1000, 10_000)]
    assert [extra_bytes(row) for row in rows] == [EXTRA_BYTES_FLOOR] * 4
    (fit,) = [f for f in fit_all(rows) if f["metric"] == "extra_bytes"]
    assert fit["fit"] == "line" and fit["exponent"] == pytest.approx(0.0, abs=1e-12)


def test_line_fit_interval_and_r2():
    fit = line_fit([0, 1, 2, 3], [1, 3, 5, 7])
    assert fit.slope == pytest.approx(2.0) and fit.r2 == pytest.approx(1.0)
    assert fit.ci[1] - fit.ci[0] == pytest.approx(0.0, abs=1e-9)
    assert line_fit([0, 1], [0, 1]).ci == (-np.inf, np.inf)


@pytest.mark.parametrize("claimed,interval,word", [
    (1, (0.9, 1.1), "holds"), (0, (-0.3, 0.3), "holds"), (1, (0.8, 1.4), "unclear"),
    (0, (0.31, 0.5), "wrong"), (2, (1.2, 1.69), "wrong"), (1, (-np.inf, np.inf), "unclear"),
    (1, (0.5, np.inf), "unclear"), (1, None, "n/a"),
])
def test_a_verdict_reads_the_whole_interval(claimed, interval, word):
    assert verdict(claimed, interval) == word


def synthetic_scaling(run_dir, exponents):
    """scaling.csv rows, f linear, whose ω grows as n^p and extra memory as n^q for each
    (backend, variant) given as (p, q)."""
    run_dir.mkdir()
    writer = CsvWriter(run_dir / "scaling.csv", (*COLUMNS, "case", "shard"))
    rng = np.random.default_rng(5)
    for (backend, variant), (p_omega, p_memory) in exponents.items():
        for n in (100, 1000, 10_000, 100_000, 1_000_000):
            noise = float(np.exp(rng.normal(0, 0.02)))
            omega = 3.0 * n**p_omega * noise
            writer.write({"study": "scaling", "family": "rosenbrock", "size": n,
                          "n_inputs": n, "backend": backend, "variant": variant,
                          "status": "ok", "time_s": 1e-8 * n * omega, "f_time_s": 1e-8 * n,
                          "f_method": "numpy", "peak_bytes": 8 * n + 100.0 * n**p_memory,
                          "f_peak_bytes": 0, "memory_method": "tracemalloc",
                          "omega": omega, "digits": 15.0, "expr_nodes": 4 * n})
    writer.close()


def test_claims_table_from_synthetic_fits(tmp_path):
    run_dir = tmp_path / "run"
    synthetic_scaling(run_dir, {("central", "default"): (1.0, 1.0),
                                ("reverse", "default"): (0.0, 1.0),
                                ("sympy", "default"): (0.0, 0.0)})
    rows = read_rows(run_dir / "scaling.csv")
    fits = {(f["backend"], f["metric"]): f["exponent"] for f in fit_all(rows)}
    assert fits["central", "omega"] == pytest.approx(1.0, abs=0.02)
    assert fits["sympy", "size"] == pytest.approx(1.0)
    from diffbench.results import write_csv

    write_csv(run_dir / "scaling_fit.csv", FIT_COLUMNS, fit_all(rows))
    write_claims(run_dir)
    text = (run_dir / "claims.md").read_text()
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()
             if line.startswith("| ") and "rosenbrock" in line}
    assert "holds" in lines["central differences"].split("|")[5]  # ω ∝ n: n passes of f
    assert "wrong" in lines["central differences"].split("|")[9]  # memory 1 vs claimed 0
    assert "holds" in lines["native reverse mode"].split("|")[5]  # ω constant
    assert "holds" in lines["native reverse mode"].split("|")[9]
    assert "wrong" in lines["SymPy"].split("|")[5]  # ω constant, not falling as "O(1)" would
    assert "holds" in lines["SymPy"].split("|")[9]  # the expression is O(n)
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
    config.write_text(SCALING.format(budget=4.0, backends='"sympy", "reverse"')
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
    assert {f["metric"] for f in fits} >= {"time_s", "omega", "extra_bytes", "rss_peak_bytes",
                                          "f_evals"}
    f_evals = next(f for f in fits if f["backend"] == "central" and f["metric"] == "f_evals")
    assert float(f_evals["exponent"]) == pytest.approx(1.0)
    claims = (out / "claims.md").read_text()
    assert "central differences" in claims and "JAX forward (jacfwd)" in claims
    assert (out / "plots" / "scaling_cost.png").stat().st_size > 10_000
    assert (out / "plots" / "scaling_omega.png").stat().st_size > 10_000
    assert "the textbook table, measured" in result.output
