"""A small, safe grammar for target functions of one variable ``x`` — never ``eval``.

    expr  := term (('+' | '-') term)*
    term  := unary (('*' | '/') unary)*
    unary := ('+' | '-') unary | power
    power := atom (('^' | '**') unary)?          (right-associative)
    atom  := NUMBER | 'x' | 'pi' | 'e' | FUNC '(' expr ')' | '(' expr ')'
    FUNC  := sin cos tan tanh exp log sqrt abs relu sign floor

``parse_expression`` returns an ``Expression`` whose ``evaluate`` works on torch tensors (so
derivatives come from autograd). Errors are ``BadInput`` with the 1-based position.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from vizcli.common.errors import BadInput

FUNCTIONS = ("sin", "cos", "tan", "tanh", "exp", "log", "sqrt", "abs", "relu", "sign", "floor")
SMOOTH_FUNCTIONS = {"sin", "cos", "exp", "tanh", "tan", "log", "sqrt"}
MAX_LENGTH = 500
MAX_DEPTH = 60
_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|[-+*/^()]))")


@dataclass(frozen=True)
class Node:
    kind: str  # "num", "x", "neg", "add", "sub", "mul", "div", "pow", "call"
    value: Any = None  # the number, or the function name
    children: tuple = ()


class Expression:
    """A parsed target function; ``text`` is what the user wrote."""

    def __init__(self, text: str, root: Node):
        self.text = text
        self.root = root

    def evaluate(self, x):
        """Evaluate on a float64 torch tensor ``x`` (any shape)."""
        return _evaluate(self.root, x)

    @property
    def functions(self) -> set[str]:
        found: set[str] = set()
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.kind == "call":
                found.add(node.value)
            stack.extend(node.children)
        return found

    @property
    def smooth(self) -> bool:
        """Built only from smooth functions and integer powers (Taylor expansion applies)."""
        if not self.functions <= SMOOTH_FUNCTIONS:
            return False
        stack = [self.root]
        while stack:
            node = stack.pop()
            if node.kind == "pow":
                exponent = node.children[1]
                if not (exponent.kind == "num" and float(exponent.value).is_integer() and exponent.value >= 0):
                    return False
            stack.extend(node.children)
        return True


def parse_expression(text: str, parameter: str = "target") -> Expression:
    """Parse ``text``; raises ``BadInput`` naming the position of the first error."""
    if len(text) > MAX_LENGTH:
        raise BadInput(f"expression of {len(text)} characters; at most {MAX_LENGTH}", parameter=parameter)
    parser = _Parser(text, parameter)
    root = parser.expression(0)
    if parser.peek() is not None:
        kind, value, position = parser.peek()
        raise parser.error(f"unexpected {value!r}", position)
    return Expression(text, root)


class _Parser:
    def __init__(self, text: str, parameter: str):
        self.text = text
        self.parameter = parameter
        self.tokens = self._tokenize()
        self.index = 0

    def error(self, message: str, position: int) -> BadInput:
        return BadInput(f"{message} at position {position + 1}", parameter=self.parameter, value=self.text)

    def _tokenize(self) -> list[tuple[str, str, int]]:
        tokens = []
        position = 0
        while position < len(self.text):
            if self.text[position:].strip() == "":
                break
            match = _TOKEN.match(self.text, position)
            if not match or match.end() == position:
                start = position + len(self.text[position:]) - len(self.text[position:].lstrip())
                raise self.error(f"unexpected character {self.text[start]!r}", start)
            kind = match.lastgroup or ""
            value = match.group(kind)
            tokens.append((kind, value, match.start(kind)))
            position = match.end()
        return tokens

    def peek(self):
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self):
        token = self.peek()
        self.index += 1
        return token

    def expect(self, value: str) -> None:
        token = self.peek()
        if token is None or token[1] != value:
            position = token[2] if token else len(self.text)
            found = f"{token[1]!r}" if token else "the end"
            raise self.error(f"expected {value!r}, found {found}", position)
        self.index += 1

    def _check_depth(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            token = self.peek()
            raise self.error(f"nested more than {MAX_DEPTH} levels deep", token[2] if token else len(self.text))

    def expression(self, depth: int) -> Node:
        self._check_depth(depth)
        node = self.term(depth + 1)
        while self.peek() is not None and self.peek()[1] in ("+", "-"):
            operator = self.take()[1]
            node = Node("add" if operator == "+" else "sub", children=(node, self.term(depth + 1)))
        return node

    def term(self, depth: int) -> Node:
        node = self.unary(depth + 1)
        while self.peek() is not None and self.peek()[1] in ("*", "/"):
            operator = self.take()[1]
            node = Node("mul" if operator == "*" else "div", children=(node, self.unary(depth + 1)))
        return node

    def unary(self, depth: int) -> Node:
        self._check_depth(depth)
        token = self.peek()
        if token is not None and token[1] in ("+", "-"):
            self.take()
            operand = self.unary(depth + 1)
            return operand if token[1] == "+" else Node("neg", children=(operand,))
        return self.power(depth + 1)

    def power(self, depth: int) -> Node:
        base = self.atom(depth + 1)
        token = self.peek()
        if token is not None and token[1] in ("^", "**"):
            self.take()
            return Node("pow", children=(base, self.unary(depth + 1)))
        return base

    def atom(self, depth: int) -> Node:
        self._check_depth(depth)
        token = self.take()
        if token is None:
            raise self.error("expression ends too early (check for a missing operand or bracket)", len(self.text))
        kind, value, position = token
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise self.error(f"number {value} is too large", position)
            return Node("num", number)
        if kind == "name":
            if value == "x":
                return Node("x")
            if value == "pi":
                return Node("num", math.pi)
            if value == "e":
                return Node("num", math.e)
            if value in FUNCTIONS:
                self.expect("(")
                argument = self.expression(depth + 1)
                self.expect(")")
                return Node("call", value, (argument,))
            raise self.error(
                f"unknown name {value!r} (allowed: x, pi, e, {', '.join(FUNCTIONS)})", position
            )
        if value == "(":
            node = self.expression(depth + 1)
            self.expect(")")
            return node
        raise self.error(f"unexpected {value!r}", position)


def _evaluate(node: Node, x):
    import torch

    kind = node.kind
    if kind == "num":
        return torch.full_like(x, node.value)
    if kind == "x":
        return x
    if kind == "neg":
        return -_evaluate(node.children[0], x)
    if kind in ("add", "sub", "mul", "div", "pow"):
        left, right = (_evaluate(child, x) for child in node.children)
        if kind == "add":
            return left + right
        if kind == "sub":
            return left - right
        if kind == "mul":
            return left * right
        if kind == "div":
            return left / right
        return torch.pow(left, right)
    argument = _evaluate(node.children[0], x)
    functions = {
        "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "tanh": torch.tanh, "exp": torch.exp,
        "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs, "relu": torch.relu, "sign": torch.sign,
        "floor": torch.floor,
    }
    return functions[node.value](argument)
