"""vizcli approx through the CLI: table, json, csv, plot, sawtooth, bad input."""

import csv
import io
import json

import pytest

from tests.checks import one_error_line


def test_sweep_table_json_csv_and_plot(invoke, tmp_path):
    args = ["approx", "--width", "1,4", "--restarts", "1"]
    table = invoke(*args, "--plot", tmp_path / "fit.png")
    assert table.exit_code == 0, table.stderr
    assert "tanh net 1×4" in table.stdout and "Chebyshev LS degree 12" in table.stdout and "Taylor degree 12" in table.stdout
    assert (tmp_path / "fit.png").stat().st_size > 20_000
    document = json.loads(invoke(*args, "--format", "json").stdout)
    assert document["schema"] == "vizcli.approx/1" and len(document["rows"]) == 6
    network = [row for row in document["rows"] if row["kind"] == "network"]
    assert network[1]["max_error"] < network[0]["max_error"]  # more width, less error
    rows = list(csv.DictReader(io.StringIO(invoke(*args, "--format", "csv").stdout)))
    assert {row["kind"] for row in rows} == {"network", "chebyshev", "taylor"}


def test_relu_pieces_and_runge(invoke):
    result = invoke("approx", "--target", "abs(x)", "--activation", "relu", "--width", "2", "--runge", "--format", "json")
    rows = json.loads(result.stdout)["rows"]
    assert 2 <= rows[0]["pieces"] <= 3  # |x| needs its kink; two ReLUs make at most width + 1 = 3 pieces
    runge = json.loads(invoke("approx", "--target", "1/(1+25*x^2)", "--runge", "--width", "1", "--restarts", "1", "--format", "json").stdout)["rows"]
    equispaced = {row["label"]: row["max_error"] for row in runge if row["kind"] == "interpolation"}
    assert equispaced["interpolation degree 20, equispaced nodes"] > 10 > equispaced["interpolation degree 20, chebyshev nodes"]


@pytest.mark.parametrize(
    "args, fragment",
    [(["--target", "sin(x"], "expected ')'"), (["--target", "log(x)"], "not finite at x = -1"),
     (["--target", "__class__"], "unknown name '__class__'"), (["--domain", "1"], "--domain"),
     (["--width", "0"], "--width 0"), (["--width", "a,b"], "--width"), (["--depth", "9"], "--depth"),
     (["--activation", "gelu"], "--activation gelu"), (["--format", "xml"], "--format xml"),
     (["--sawtooth", "0"], "--sawtooth 0"), (["--plot", "x.jpg"], "--plot x.jpg"), (["--restarts", "0"], "--restarts 0")],
)
def test_bad_input(invoke, args, fragment):
    result = invoke("approx", *args)
    assert result.exit_code == 2, result.stdout
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1 and fragment in result.stderr


GOLDEN_RTOL = 0.2  # errors may move this much between CPUs; a doubled error fails


def _rounded(text: str) -> str:
    """Timings out, errors to 3 significant digits (compared within GOLDEN_RTOL)."""
    import re

    text = re.sub(r"\(\d+\.\d s\)", "(T s)", text)
    return re.sub(r"\d\.\d+e[-+]\d+", lambda m: f"{float(m.group(0)):.2e}", text)


def test_sawtooth_matches_golden(invoke, golden):
    result = invoke("approx", "--sawtooth", "3")
    assert result.exit_code == 0, result.stderr
    assert "8 linear pieces (2^3 = 8)" in result.stdout
    golden("approx_sawtooth_3.txt", _rounded(result.stdout), rtol=GOLDEN_RTOL)


@pytest.mark.slow
def test_claims_give_verdicts_with_numbers_and_match_golden(golden):
    # the claims take minutes: run them once, check them, and compare the report `approx --claims` prints
    from vizcli.approx.claims import run_claims
    from vizcli.approx.render import claim_lines

    claims = run_claims(seed=0)
    assert len(claims) == 5
    for claim in claims:
        assert claim.verdict in ("holds", "holds partly", "does not hold")
        assert any(char.isdigit() for item in claim.measured for char in item)
        assert claim.thresholds
    golden("approx_claims.txt", _rounded("\n".join(claim_lines(claims)) + "\n"), rtol=GOLDEN_RTOL)


def test_a_pole_in_the_target_is_warned_about(invoke):
    result = invoke("approx", "--target", "1/(x-0.00001)", "--width", "1", "--restarts", "1")
    assert "a pole?" in result.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (["--claims", "--width", "8"], "--width sets up a fit, which --claims does not run"),
    (["--sawtooth", "3", "--target", "x"], "--target sets up a fit, which --sawtooth does not run"),
    (["--sawtooth", "3", "--plot", "p.png"], "--sawtooth draws no picture"),
    (["--format", "json", "-o", "x.csv"], "--format json is what stdout shows"),
    (["--output-format", "json"], "--output-format is the format of -o FILE"),
])
def test_options_that_would_do_nothing_are_refused(invoke, args, fragment):
    assert fragment in one_error_line(invoke("approx", *args))


def test_a_file_takes_its_format_from_its_suffix_and_is_confirmed(invoke, tmp_path):
    result = invoke("approx", "--sawtooth", "1", "-o", tmp_path / "s.json")
    assert result.exit_code == 0 and result.stdout == "" and f"wrote the json to {tmp_path / 's.json'}" in result.stderr
    assert json.loads((tmp_path / "s.json").read_text())["schema"].startswith("vizcli.approx")
