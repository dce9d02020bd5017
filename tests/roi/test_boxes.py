"""Box parsing, files, validation and RoIPool's rounding."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from roi_reference import pool_quantisation_error, pool_rounded_box, round_half_away

from tests.checks import CHELSEA, PROPERTY, either_value_or_bad_input, one_error_line
from vizcli.common.errors import BadInput
from vizcli.roi.boxes import Box, load_boxes_file, parse_box_text


def test_parse_box_text():
    assert parse_box_text("140,80,210,150").coords == (140, 80, 210, 150)
    assert parse_box_text(" 1.5 2 3 4 ").coords == (1.5, 2, 3, 4)


@pytest.mark.parametrize(
    "text, fragment",
    [("1,2,3", "4 numbers required"), ("a,b,c,d", "not numbers"), ("40,1,20,5", "x2 (20) must be greater than x1 (40)"),
     ("1,5,3,5", "y2 (5) must be greater than y1 (5)"), ("nan,1,2,3", "finite"), ("1,1,inf,3", "finite")],
)
def test_bad_box_text_names_the_box(text, fragment):
    with pytest.raises(BadInput, match=r"box 3 .*" + fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_box_text(text, number=3)


def test_json_and_csv_files(tmp_path):
    plain = tmp_path / "b.json"
    plain.write_text(json.dumps([[1, 2, 3, 4], {"box": [5, 6, 7, 8], "label": "eye"}]))
    boxes = load_boxes_file(str(plain), ["a.png"])["a.png"]
    assert [b.coords for b in boxes] == [(1, 2, 3, 4), (5, 6, 7, 8)] and boxes[1].label == "eye"
    keyed = tmp_path / "k.json"
    keyed.write_text(json.dumps({"a.png": [[1, 2, 3, 4]], "b.png": [[2, 2, 9, 9]]}))
    result = load_boxes_file(str(keyed), ["dir/a.png", "b.png"])
    assert result["dir/a.png"][0].coords == (1, 2, 3, 4) and result["b.png"][0].coords == (2, 2, 9, 9)
    table = tmp_path / "b.csv"
    table.write_text("x1,y1,x2,y2,label\n1,2,3,4,nose\n5,6,7,8,\n")
    rows = load_boxes_file(str(table), ["a.png"])["a.png"]
    assert rows[0].label == "nose" and rows[1].coords == (5, 6, 7, 8)


@pytest.mark.parametrize(
    "content, fragment",
    [("[1, 2", "invalid JSON"), ('{"x.png": [[1,2,3,4]]}', "names no image"), ("[[1,2,3]]", "box 1 .*4 numbers"),
     ('[{"b": [1,2,3,4]}]', "without a \"box\" key"), ("x,y\n1,2\n", "header with x1,y1,x2,y2"), ("", "is empty"),
     ('[[1, 2, "3", 4]]', "must be numbers"), ("x1,y1,x2,y2\n1,2,three,4\n", "box 1 .*line 2")],
)
def test_bad_box_files(tmp_path, content, fragment):
    path = tmp_path / ("b.json" if content.startswith(("[", "{")) else "b.csv")
    path.write_text(content)
    with pytest.raises(BadInput, match=fragment):
        load_boxes_file(str(path), ["a.png"])


def test_rounding_and_quantisation_error():
    assert round_half_away(2.5) == 3 and round_half_away(-2.5) == -3 and round_half_away(2.4) == 2
    # 140/16 = 8.75 → 9 → starts at 144 px (+4); 210/16 = 13.125 → 13, inclusive → ends at 224 px (+14)
    assert pool_quantisation_error((140, 80, 210, 150), 1 / 16) == (4.0, 0.0, 14.0, 10.0)


def test_vectorised_geometry_equals_the_scalar_rules():
    import random

    from vizcli.roi.pooling import PoolSpec
    from vizcli.roi.report import box_geometry

    rng = random.Random(4)
    boxes = [Box(i + 1, x, y, x + rng.uniform(1, 90), y + rng.uniform(1, 90))
             for i, (x, y) in enumerate((rng.uniform(0, 300), rng.uniform(0, 200)) for _ in range(200))]
    for factor in (1.0, 0.5):
        for result, box in zip(box_geometry(boxes, factor, PoolSpec((7, 7), 1 / 16, 2, True)), boxes):
            scaled = tuple(v * factor for v in box.coords)
            assert result.pool_cells == pool_rounded_box(scaled, 1 / 16)
            expected = tuple(v / factor for v in pool_quantisation_error(scaled, 1 / 16))
            assert result.pool_error_px == pytest.approx(expected, abs=1e-9)


box_like = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6)), max_size=6).map(
        lambda values: ",".join(map(str, values))),
)


@PROPERTY
@given(box_like)
def test_box_text_parses_or_is_bad_input(text):
    message = either_value_or_bad_input(parse_box_text, text, 1)
    if message is not None:
        assert message.startswith("box 1 ")


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(), st.integers(), st.text(max_size=5)),
                           lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=4),
                           max_leaves=20)


@PROPERTY
@given(st.one_of(json_values.map(json.dumps), st.text(max_size=200)), st.sampled_from(["b.json", "b.csv"]))
def test_box_files_parse_or_are_bad_input(tmp_path_factory, content, name):
    path = tmp_path_factory.mktemp("boxes") / name
    path.write_text(content, encoding="utf-8")
    either_value_or_bad_input(load_boxes_file, str(path), ["a.png"])


def test_boxes_count_limit_from_the_command_line_and_from_files(invoke, tmp_path):
    many = ["--boxes", "1,1,9,9"] * 3
    assert "--max-boxes 2" in one_error_line(invoke("roi", CHELSEA, *many, "--max-boxes", "2"))
    big = tmp_path / "boxes.json"
    big.write_text(json.dumps([[1, 1, 9, 9]] * 50))
    message = one_error_line(invoke("roi", CHELSEA, "--boxes-file", big, "--max-boxes", "2"))
    assert "bytes is more than 2 boxes can take" in message and "--max-boxes" in message
    rows = tmp_path / "boxes.csv"
    rows.write_text("x1,y1,x2,y2\n" + "1,1,9,9\n" * 4)
    assert "more than --max-boxes 3 boxes" in one_error_line(invoke("roi", CHELSEA, "--boxes-file", rows, "--max-boxes", "3"))


@pytest.mark.parametrize("content, fragment", [
    ("[" * 100_000, "nested too deeply at line 1 column 65"),
    ("[[1,1,9," + "9" * 500 + "]]", "a number of 500 characters"),
    ("[[1,1,9," + "9" * 5000 + "]]", "a number of 5000 characters"),
    ("[[1,1,9,1" + "0" * 400 + ".5]]", "a number of"),
    ("x1,y1,x2,y2\n1,1," + "9" * 400 + ",9\n", "finite"),
    ("x1,y1,x2,y2\n1,1," + "9" * 5000 + ",9\n", "finite"),
])
def test_boxes_files_with_absurd_nesting_or_numbers(invoke, tmp_path, content, fragment):
    path = tmp_path / ("boxes.json" if content[0] == "[" else "boxes.csv")
    path.write_text(content)
    assert fragment in one_error_line(invoke("roi", CHELSEA, "--boxes-file", path))


def test_boxes_keyed_by_an_ambiguous_file_name(invoke, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (64, 64)).save(tmp_path / folder / "x.png")
    first, second = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"x.png": [[1, 1, 9, 9]]}))
    assert "matches 2 images" in one_error_line(invoke("roi", first, second, "--boxes-file", boxes))
    boxes.write_text(json.dumps({str(first): [[1, 1, 9, 9]], str(second): [[2, 2, 9, 9]]}))
    result = invoke("roi", first, second, "--boxes-file", boxes, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [row["box"][0] for row in json.loads(result.stdout)["rows"]] == [1, 2]


def test_a_box_without_area_stops_a_boxes_file_and_is_a_problem_for_a_dataset(tmp_path):
    from vizcli.roi.boxes import load_boxes_file, read_keyed_boxes

    rows = tmp_path / "boxes.csv"
    rows.write_text("x1,y1,x2,y2\n1,1,9,9\n4,4,4,9\n")
    with pytest.raises(BadInput, match="x2 \\(4\\) must be greater than x1 \\(4\\)"):
        load_boxes_file(str(rows), ["a.png"])  # --boxes-file: the user's one image, fixed at once
    problems = []
    keyed, every = read_keyed_boxes(str(rows), on_bad_box=problems.append)
    assert keyed == {} and [box.coords for box in every] == [(1.0, 1.0, 9.0, 9.0)]
    assert [(p["line"], p["annotation_id"]) for p in problems] == [(3, "2")]
    rows.write_text("x1,y1,x2,y2\n4,4,4,9\n")  # every row a problem: no boxes, and no error either
    assert read_keyed_boxes(str(rows), on_bad_box=problems.append) == ({}, None)
