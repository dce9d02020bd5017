"""The target-expression grammar: values, precedence, and hostile input."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.checks import PROPERTY, either_value_or_bad_input
from vizcli.approx.expr import parse_expression
from vizcli.common.errors import BadInput


def _value(text, x):
    return float(parse_expression(text).evaluate(torch.tensor(x, dtype=torch.float64)))


@pytest.mark.parametrize(
    "text, x, expected",
    [("sin(2*pi*x)", 0.25, 1.0), ("x^2^3", 2.0, 256.0), ("-x**2", 3.0, -9.0), ("2*x+1", 4.0, 9.0),
     ("1/(1+25*x^2)", 0.2, 0.5), ("abs(x) + relu(-x)", -2.0, 4.0), ("sign(x)*floor(x)", -1.5, 2.0),
     ("sqrt(exp(log(x)))", 4.0, 2.0), ("tanh(0)+cos(0)+tan(0)", 1.0, 1.0), ("e^x", 1.0, math.e),
     ("sin(2*sin(2*sin(x)))", 1.0, math.sin(2 * math.sin(2 * math.sin(1.0)))), ("--x", 2.0, 2.0), (".5e1*x", 2.0, 10.0)],
)
def test_values_and_precedence(text, x, expected):
    assert _value(text, x) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "text, fragment",
    [("sin(2*pi*x", "expected ')', found the end at position 11"), ("__import__('os').system('x')", "unexpected character"),
     ("x.real", "unexpected character '.' at position 2"), ("os", "unknown name 'os'"), ("exec(x)", "unknown name 'exec'"),
     ("2x", "unexpected 'x' at position 2"), ("", "ends too early"), ("x+", "missing operand or bracket) at position 3"),
     ("sin x", "expected '('"), ("lambda: 1", "unexpected character ':'"), ("lambda", "unknown name 'lambda'"), ("x[0]", "unexpected character '['"),
     ("1e999", "too large"), ("(" * 100 + "x" + ")" * 100, "nested more than"), ("x" + "+x" * 300, "at most 500"),
     ("x;import os", "unexpected character ';'"), ("x @ x", "unexpected character '@'")],
)
def test_hostile_expressions_are_bad_input_with_position(text, fragment):
    with pytest.raises(BadInput, match="^target") as caught:
        parse_expression(text)
    assert fragment in str(caught.value)


def test_smoothness_decides_taylor():
    assert parse_expression("sin(x)*exp(x)+x^3").smooth
    assert not parse_expression("abs(x)").smooth
    assert not parse_expression("x^0.5").smooth


expression_alphabet = st.sampled_from(list("x+-*/^().0123456789e ") + ["pi", "sin", "cos", "exp", "log", "sqrt", "abs", "**", "__", "import", "os", ",", "[", "]"])


@PROPERTY
@given(st.one_of(st.text(max_size=40), st.lists(expression_alphabet, max_size=25).map("".join)))
def test_expressions_parse_or_are_bad_input(text):
    from vizcli.approx.fitting import make_target

    message = either_value_or_bad_input(make_target, text, "-1,1")
    if message is not None:
        assert message.startswith("target=")
