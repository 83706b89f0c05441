"""Results files read defensively: report, plot, compare, merge name the file, line and
column of what is wrong, leave out a torn last line with a warning, and never trace back;
compare's verdicts; merge of an incomplete set of shards."""

import json
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffbench.cli import app
from diffbench.report.compare import Z, compare_runs
from diffbench.results import write_csv
from diffbench.studies.gradient import COLUMNS

runner = CliRunner()
MACHINE = {"cpu": "x", "cores": 2, "machine": "x86_64", "system": "Linux", "python": "3.11"}


def fake_run(run_dir: Path, rows: list[dict], *, config=None, machine=None, shard=None,
             finished=True, versions=None) -> Path:
    """A run directory written directly: a manifest and gradient.csv with ``rows`` (the
    columns not given are empty)."""
    run_dir.mkdir(parents=True)
    manifest = {"config_path": "x.toml", "config": config or {"name": "x"}, "done": [],
                "shard": shard, "isolate": False, "finished": finished,
                "machine": machine or MACHINE, "versions": versions or {"numpy": "2"}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    full = [{"study": "gradient", "family": "sin", "size": None, "backend": "central",
             "variant": "default", "status": "ok", "message": "", "time_s": 1e-3,
             "time_iqr_s": 1e-5, "samples": 5, "unstable": False, "case": f"k{i}", **row}
            for i, row in enumerate(rows)]
    write_csv(run_dir / "gradient.csv", (*COLUMNS, "case", "shard"), full)
    return run_dir


@pytest.fixture
def good(tmp_path) -> Path:
    return fake_run(tmp_path / "good", [{}, {"family": "exp", "time_s": 2e-3}])


def rewrite(path: Path, edit) -> None:
    path.write_text(edit(path.read_text()))


def edit_cells(change):
    """An edit of a CSV's text that applies ``change(lines)`` to its lines split in cells
    (the fake runs' cells hold no commas)."""
    def edit(text: str) -> str:
        lines = [line.split(",") for line in text.splitlines()]
        change(lines)
        return "".join(",".join(cells) + "\n" for cells in lines)
    return edit


def drop_column(name: str):
    def change(lines):
        i = lines[0].index(name)
        for cells in lines:
            del cells[i]
    return edit_cells(change)


def set_cell(name: str, value: str):
    def change(lines):
        lines[1][lines[0].index(name)] = value
    return edit_cells(change)


DAMAGE = [
    ("no time_s", drop_column("time_s"), "line 1: no column 'time_s'"),
    ("no family", drop_column("family"), "line 1: no column 'family'"),
    ("a word for a time", set_cell("time_s", "fast"), "line 2, column 'time_s': 'fast' is not "
                                                      "a number"),
    ("a status that is none", set_cell("status", "okay"), "line 2, column 'status': 'okay' is "
                                                          "not a status"),
    ("an extra cell", edit_cells(lambda lines: lines[1].append("x")),
     f"line 2: {len(COLUMNS) + 3} cells, the header has {len(COLUMNS) + 2}"),
    ("empty", lambda text: "", "empty: no header line"),
    ("not UTF-8", None, "line 4, column 1: not UTF-8 text (byte 0xff)"),
]
SHARD_CONFIG = '[[study]]\nkind = "gradient"\nfamilies = ["sin", "exp"]\nbackends = ["central"]\n'



@pytest.mark.parametrize("command", ["report", "plot", "compare", "merge"])
@pytest.mark.parametrize("what,edit,words", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_csv_is_named_never_a_traceback(tmp_path, good, command, what, edit, words):
    damaged = tmp_path / "damaged"
    shutil.copytree(good, damaged)
    if edit is None:
        (damaged / "gradient.csv").write_bytes((damaged / "gradient.csv").read_bytes() + b"\xff")
    else:
        rewrite(damaged / "gradient.csv", edit)
    if command == "merge":
        (tmp_path / "x.toml").write_text(SHARD_CONFIG)
        manifest = json.loads((damaged / "manifest.json").read_text())
        manifest.update(shard="1/1", config_path=str(tmp_path / "x.toml"))
        (damaged / "manifest.json").write_text(json.dumps(manifest))
    args = {"report": ["report", str(damaged)], "plot": ["plot", str(damaged)],
            "compare": ["compare", str(good), str(damaged)],
            "merge": ["merge", str(damaged), "--out", str(tmp_path / "m")]}
    result = runner.invoke(app, args[command])
    assert "Traceback" not in result.output
    assert result.exit_code == 2, result.output
    assert f"{damaged / 'gradient.csv'}: " in result.output and words in result.output


def test_a_torn_last_line_is_left_out_with_a_warning(tmp_path, good):
    path = good / "gradient.csv"
    path.write_text(path.read_text() + "gradient,relu,,3,central,default,ok")
    result = runner.invoke(app, ["report", str(good), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "line 4 is incomplete" in result.output and "left out" in result.output
    rows = json.loads(result.stdout)["gradient.csv"]
    assert [row["family"] for row in rows] == ["sin", "exp"]


def test_a_run_without_rows_says_so(tmp_path):
    run_dir = fake_run(tmp_path / "r", [])
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0 and "no rows yet" in result.output


def ratio_rows(samples_b: int = 5, unstable_b: bool = False, time_b: float = 1.5e-3):
    return ([{"time_s": 1e-3, "time_iqr_s": 1e-5}],
            [{"time_s": time_b, "time_iqr_s": 1e-5, "samples": samples_b,
              "unstable": unstable_b}])


def test_compare_interval_and_verdict_use_one_sigma_multiple(tmp_path):
    rows_a, rows_b = ratio_rows(time_b=1.0011e-3)
    a, b = fake_run(tmp_path / "a", rows_a), fake_run(tmp_path / "b", rows_b)
    (c,) = compare_runs(a, b)
    low, high = c.interval
    assert math.isclose(math.log(high / c.ratio), Z * c.sigma_ln)
    assert c.beyond_noise == (not low <= 1.0 <= high)
    result = runner.invoke(app, ["compare", str(a), str(b)])
    assert f"±{Z:g}σ interval" in result.output


@pytest.mark.parametrize("samples_b,unstable_b,verdict", [
    (1, False, "too few samples"), (2, False, "too few samples"),
    (5, True, "unstable timing"), (5, False, "slower")])
def test_compare_does_not_rank_what_it_cannot_judge(tmp_path, samples_b, unstable_b, verdict):
    rows_a, rows_b = ratio_rows(samples_b, unstable_b)
    a, b = fake_run(tmp_path / "a", rows_a), fake_run(tmp_path / "b", rows_b)
    (c,) = compare_runs(a, b)
    assert c.verdict.startswith(verdict)
    result = runner.invoke(app, ["compare", str(a), str(b), "--fail-above", "1.2"])
    assert result.exit_code == (1 if verdict == "slower" else 0), result.output
    if verdict == "slower":
        assert "--fail-above 1.2: 1 case(s) slower beyond noise: sin · central ×1.5" in \
            result.output


def test_compare_warns_when_runs_differ_and_speaks_json_and_markdown(tmp_path):
    rows_a, rows_b = ratio_rows()
    a = fake_run(tmp_path / "a", rows_a)
    b = fake_run(tmp_path / "b", rows_b, config={"name": "y"},
                 machine={**MACHINE, "cpu": "y"}, versions={"numpy": "1"})
    result = runner.invoke(app, ["compare", str(a), str(b), "--format", "json"])
    assert result.exit_code == 0
    assert "different configs" in result.output and "different versions of numpy" in \
        result.output and "different machines (cpu differ)" in result.output
    (entry,) = json.loads(result.stdout)
    assert entry["verdict"] == "slower" and entry["low"] < entry["ratio"] < entry["high"]
    markdown = runner.invoke(app, ["compare", str(a), str(b), "--format", "markdown"])
    assert "| sin · central | 1.5 |" in markdown.stdout


def test_merge_refuses_an_incomplete_set_unless_partial(tmp_path):
    shard = fake_run(tmp_path / "s1", [{}], shard="1/2")
    config = tmp_path / "x.toml"
    config.write_text(SHARD_CONFIG)
    manifest = json.loads((shard / "manifest.json").read_text())
    manifest.update(config_path=str(config))
    (shard / "manifest.json").write_text(json.dumps(manifest))
    refused = runner.invoke(app, ["merge", str(shard), "--out", str(tmp_path / "m")])
    assert refused.exit_code == 2 and "shard 2/2 missing" in refused.output
    partial = runner.invoke(app, ["merge", str(shard), "--out", str(tmp_path / "m"),
                                  "--partial"])
    assert partial.exit_code == 0, partial.output
    assert "merged 1 of 2 shards" in partial.output and "2/2 missing" in partial.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["missing_shards"] == [
        "2/2"]


def test_the_columns_readers_need_are_the_columns_studies_write():
    from diffbench.schema import BOOLEAN, NUMERIC, REQUIRED
    from diffbench.studies import STUDIES

    written = {}
    for study in STUDIES.values():
        written.update(study.files)
        written.update({name: columns for name, (columns, _) in study.summaries.items()})
    for name, required in REQUIRED.items():
        assert set(required) <= set(written[name]), (name, set(required) - set(written[name]))
    typed = NUMERIC | BOOLEAN
    assert typed <= {column for columns in written.values() for column in columns}
