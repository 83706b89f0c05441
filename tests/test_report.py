"""Reports and plots from saved runs: files, formats and comparisons."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffbench.backends.base import variant_label
from diffbench.cli import app
from diffbench.report.compare import compare_runs
from diffbench.results import CsvWriter, read_rows
from diffbench.runstate import write_manifest
from diffbench.studies.gradient import COLUMNS

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"

TINY = """
name = "tiny"
[timing]
min_sample_s = 0.0005
repeats = 3
[[study]]
kind = "gradient"
families = ["sin", "relu", "rosenbrock"]
sizes = [4]
backends = ["central", "jax"]
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    (tmp / "tiny.toml").write_text(TINY)
    out = tmp / "run"
    result = runner.invoke(app, ["run", str(tmp / "tiny.toml"), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_run_writes_report_and_valid_plots(tiny_run):
    report = (tiny_run / "report.md").read_text()
    assert "### gradient study" in report and "](plots/gradient_omega.png)" in report
    for name in ("gradient_omega.png", "gradient_digits.png"):
        data = (tiny_run / "plots" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000


def test_no_plots_option(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY.replace('"relu", "rosenbrock"', ""))
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(tmp_path / "tiny.toml"), "--out", str(out), "-q",
                                 "--no-plots"])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").exists() and not (out / "plots").exists()


def test_plot_command_redraws(tiny_run, tmp_path):
    result = runner.invoke(app, ["plot", str(tiny_run)])
    assert result.exit_code == 0 and "gradient_digits.png" in result.output


def test_json_report_round_trips_the_csv(tiny_run):
    result = runner.invoke(app, ["report", str(tiny_run), "--format", "json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)["gradient.csv"]
    original = read_rows(tiny_run / "gradient.csv")
    assert len(rows) == len(original)
    for parsed, text in zip(rows, original, strict=True):
        for column, value in text.items():
            if value == "":
                assert parsed[column] is None
            elif isinstance(parsed[column], float):
                assert parsed[column] == float(value)
            else:
                assert str(parsed[column]).lower() == value.lower()


def test_markdown_and_table_reports_show_every_row(tiny_run):
    original = read_rows(tiny_run / "gradient.csv")
    markdown = runner.invoke(app, ["report", str(tiny_run), "--format", "markdown"]).output
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + len(original)  # header + one line per row
    for line, row in zip(lines[1:], original, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == row["family"] and cells[9] == row["status"]
        if row["digits"]:
            assert cells[7] == f"{float(row['digits']):.1f}"
    table = runner.invoke(app, ["report", str(tiny_run)]).output
    assert table.count("rosenbrock") == 2


EVERY_STUDY = """
[timing]
min_sample_s = 0.0005
repeats = 2
[[study]]
kind = "gradient"
families = ["sin"]
backends = ["central"]
[[study]]
kind = "scaling"
verdict = true
families = ["rosenbrock"]
sizes = [4, 16, 64]
backends = ["central", "reverse"]
[[study]]
kind = "step-sweep"
families = ["sin"]
h_points = 20
[[study]]
kind = "swell"
families = ["nested"]
sizes = [1, 2, 3]
"""


def test_report_prints_exactly_the_tables_the_run_printed(tmp_path):
    (tmp_path / "every.toml").write_text(EVERY_STUDY)
    out = tmp_path / "run"
    ran = runner.invoke(app, ["run", str(tmp_path / "every.toml"), "--out", str(out),
                              "--no-plots"])
    assert ran.exit_code == 0, ran.output
    reported = runner.invoke(app, ["report", str(out)])
    assert reported.exit_code == 0, reported.output
    assert ran.stdout == reported.stdout + f"results in {out}\n"
    for title in ("gradient study", "scaling study", "fitted exponents",
                  "the textbook table, measured", "step sweep", "adaptive differences",
                  "swell study", "growth of the gradient's size"):
        assert title in reported.stdout
    markdown = (out / "report.md").read_text()
    assert markdown.count("### ") == 8 and "### the textbook table, measured" in markdown
    assert "the textbook table, measured" in (out / "claims.md").read_text()


def test_report_of_a_non_run(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not a diffbench run directory" in result.output


def synthetic_run(path: Path, times: dict[str, tuple[float, float]]) -> Path:
    """A run whose cases have the given (median, IQR) times."""
    path.mkdir()
    write_manifest(path, {"config": {}, "done": []})
    writer = CsvWriter(path / "gradient.csv", (*COLUMNS, "case", "shard"))
    for family, (median, iqr) in times.items():
        writer.write({"study": "gradient", "family": family, "backend": "central",
                      "variant": "default", "status": "ok", "time_s": median,
                      "time_iqr_s": iqr, "samples": 9, "case": family})
    writer.close()
    return path


def precision_run(path: Path, dtypes: tuple[str, ...]) -> Path:
    """A run of two sizes of rosenbrock by reverse (alone and accumulating in float32) and
    jax (with a dynamic loss scale) at the given working precisions, float64 written as older
    runs wrote it (no precision columns); jax at the larger size and a lower precision is NaN."""
    precision = ("dtype", "accumulate", "loss_scale", "underflow", "overflow")
    path.mkdir()
    write_manifest(path, {"config": {}, "done": []})
    writer = CsvWriter(path / "gradient.csv", COLUMNS if len(dtypes) > 1
                       else tuple(c for c in COLUMNS if c not in precision))
    methods = (("reverse", {}), ("reverse", {"accumulate": "float32"}),
               ("jax", {"loss_scale": "dynamic"}))
    for size in (4, 64):
        for dtype in dtypes:
            for backend, options in methods:
                low = {"dtype": dtype, **options} if dtype != "float64" else {}
                failed = low and backend == "jax" and size == 64
                writer.write({"study": "gradient", "family": "rosenbrock", "size": size,
                              "backend": backend, "variant": variant_label(low),
                              "status": "nan" if failed else "ok",
                              "digits": "" if failed else 2.9 if low else 15.2, **low})
    writer.close()
    return path


def test_precision_map_is_drawn_only_for_several_dtypes(tmp_path):
    mixed = precision_run(tmp_path / "mixed", ("float64", "float16"))
    plain = precision_run(tmp_path / "plain", ("float64",))
    for run in (mixed, plain):
        assert runner.invoke(app, ["plot", str(run)]).exit_code == 0
    data = (mixed / "plots" / "gradient_precision.png").read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    report = (mixed / "report.md").read_text()
    assert "](plots/gradient_precision.png)\n\nEach cell is the method's normwise" in report
    assert not (plain / "plots" / "gradient_precision.png").exists()
    assert (plain / "plots" / "gradient_digits.png").exists()
    assert "gradient_precision" not in (plain / "report.md").read_text()


def test_compare_flags_exactly_the_differences_beyond_noise(tmp_path):
    a = synthetic_run(tmp_path / "a", {"same": (1.0, 0.01), "slower": (1.0, 0.01),
                                      "noisy": (1.0, 0.5), "faster": (2.0, 0.02)})
    b = synthetic_run(tmp_path / "b", {"same": (1.005, 0.01), "slower": (1.3, 0.01),
                                      "noisy": (1.3, 0.5), "faster": (1.0, 0.01)})
    verdicts = {c.label.split(" · ")[0]: (round(c.ratio, 3), c.beyond_noise)
                for c in compare_runs(a, b)}
    assert verdicts == {"same": (1.005, False), "slower": (1.3, True),
                        "noisy": (1.3, False), "faster": (0.5, True)}
    output = runner.invoke(app, ["compare", str(a), str(b)]).output
    assert "slower" in output and "within noise" in output


def test_csv_cells_are_plain_numbers(tmp_path):
    import numpy as np

    from diffbench.results import format_cell

    assert format_cell(np.float64(0.1)) == "0.1"
    assert format_cell(np.bool_(True)) == "true"
    assert format_cell(np.int64(3)) == "3"
    assert format_cell(float("nan")) == "" and format_cell(None) == ""


@pytest.mark.parametrize("study,plot", [
    ('kind = "step-sweep"\nfamilies = ["sin", "affine_square"]\nh_points = 30',
     "step_sweep_error.png"),
    ('kind = "swell"\nfamilies = ["nested", "product"]\nsizes = [1, 2, 3, 4]', "swell_sizes.png"),
])
def test_each_study_plots(tmp_path, study, plot):
    (tmp_path / "c.toml").write_text(f"[[study]]\n{study}\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(tmp_path / "c.toml"), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    data = (out / "plots" / plot).read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    assert f"](plots/{plot})" in (out / "report.md").read_text()
    markdown = runner.invoke(app, ["report", str(out), "--format", "markdown"]).output
    assert markdown.count("### ") >= 1


def test_messages_are_shown_as_written_not_as_markup():
    from diffbench.report.gradient_table import gradient_table
    from diffbench.report.markdown import table_to_markdown

    message = "torch is not installed: pip install -e '.[peers]'"
    row = {"family": "rosenbrock", "size": "10", "backend": "torch", "variant": "default",
           "status": "unsupported", "message": message}
    assert message in table_to_markdown(gradient_table([row]))


def wide_rows() -> list[dict]:
    """Rows with the widest cells the table meets: long names, a long variant, every
    status, large and small numbers, long notes."""
    base = {"size": "1000000", "setup_s": "123.456", "time_s": "0.000012345",
            "omega": "23456.7", "peak_bytes": "123456789", "digits": "15.9",
            "f_evals": "2000000", "unstable": "true"}
    rows = [{**base, "family": "affine_square", "backend": "jax",
             "variant": "jit=false,mode=forward,value=true", "status": status,
             "message": f"{status}: " + "a long explanation of what happened " * 3}
            for status in ("ok", "out-of-memory", "no-reference", "unsupported")]
    return rows + [{**base, "family": "rosenbrock", "backend": "central", "variant": "default",
                    "status": "ok", "message": ""}]


@pytest.mark.parametrize("width", [80, 100, 120])
def test_at_80_columns_every_number_stays_whole(width):
    from rich.console import Console

    from diffbench.report import format as fmt
    from diffbench.report.gradient_table import gradient_table

    rows = wide_rows()
    console = Console(width=width, record=True)
    console.print(gradient_table(rows, width=width))
    text = console.export_text()
    assert "…" not in text and max(map(len, text.splitlines())) <= width
    for number in (fmt.seconds(rows[0]["time_s"]), fmt.ratio(rows[0]["omega"]), "1000000",
                   "out-of-memory", "no-reference"):
        assert number in text
    assert "[1] ok: a long explanation" in text  # the notes became footnotes


def test_a_wide_terminal_shows_every_column_and_the_notes():
    from rich.console import Console

    from diffbench.report.gradient_table import gradient_table

    console = Console(width=220, record=True)
    console.print(gradient_table(wide_rows(), width=220))
    text = console.export_text()
    for header in ("setup", "memory", "f evals", "note"):
        assert header in text
    assert "[1]" not in text and "a long explanation" in text
