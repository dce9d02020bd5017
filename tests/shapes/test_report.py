from hypothesis import given
from hypothesis import strategies as st

from tests.checks import PROPERTY, either_value_or_bad_input
from vizcli.roi.pooling import parse_output_size
from vizcli.shapes.report import parse_input_size


@PROPERTY
@given(st.text(max_size=30))
def test_size_options_parse_or_are_bad_input(text):
    either_value_or_bad_input(parse_input_size, text)
    either_value_or_bad_input(parse_output_size, text)
