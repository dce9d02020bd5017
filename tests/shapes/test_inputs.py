"""Several inputs, keyword inputs and dict inputs: torchinfo's input_data, and --input-size NAME=SHAPE."""

import pytest
import torch
import torch.nn as nn

from vizcli.common.errors import BadInput
from vizcli.shapes.inputs import ModelInput, as_model_input, parse_input_specs, synthetic_input
from vizcli.shapes.report import run_module_shapes
from vizcli.shapes.trace import trace_shapes


class TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        self.left = nn.Linear(6, 4)
        self.right = nn.Linear(3, 4)

    def forward(self, x1, x2, scale: float = 1.0):
        return (self.left(x1) + self.right(x2)) * scale


class DictIn(nn.Module):
    def __init__(self):
        super().__init__()
        self.image = nn.Conv2d(3, 2, 3)
        self.text = nn.Embedding(50, 5)

    def forward(self, batch):
        return self.image(batch["image"]).mean() + self.text(batch["ids"]).sum()


class Keywords(nn.Module):
    """A forward fx cannot trace (a Python branch on a keyword): hooks take the keywords."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x, *, mode="a"):
        if mode == "a":
            return self.a(x)
        return self.b(x)


def test_several_positional_inputs():
    trace = trace_shapes(TwoTowers(), [torch.randn(2, 6), torch.randn(2, 3)])
    assert trace.method == "fx" and trace.error is None
    assert trace.input_shapes == {"arg0": (2, 6), "arg1": (2, 3)}
    assert sum(r.macs for r in trace.records) == 2 * 6 * 4 + 2 * 3 * 4


def test_keyword_inputs_by_dict_and_by_name():
    by_dict = trace_shapes(TwoTowers(), {"x1": torch.randn(1, 6), "x2": torch.randn(1, 3), "scale": 2.0})
    assert by_dict.error is None and sum(r.macs for r in by_dict.records) == 6 * 4 + 3 * 4
    report = run_module_shapes(Keywords(), torch.randn(3, 4), device="cpu", mode="b")
    trace = report.runs[0].trace
    assert trace.error is None and [r.name for r in trace.records] == ["b"] and trace.records[0].macs == 3 * 4 * 2


def test_a_dict_argument():
    batch = {"image": torch.randn(1, 3, 8, 8), "ids": torch.randint(0, 50, (1, 7))}
    trace = trace_shapes(DictIn(), [batch])
    assert trace.error is None
    assert trace.input_shapes == {"arg0.image": (1, 3, 8, 8), "arg0.ids": (1, 7)}
    assert sum(r.macs for r in trace.records) == 2 * 6 * 6 * 3 * 3 * 3


def test_input_specs_build_positional_keyword_and_dict_inputs():
    specs = parse_input_specs(["6", "x2=3", "batch.ids=7:int64:50", "batch.mask=7:bool"])
    example = synthetic_input(specs, seed=0)
    assert [tuple(t.shape) for t in example.args] == [(1, 6)]
    assert tuple(example.kwargs["x2"].shape) == (1, 3)
    ids = example.kwargs["batch"]["ids"]
    assert ids.dtype == torch.int64 and int(ids.max()) < 50 and example.kwargs["batch"]["mask"].dtype == torch.bool
    again = synthetic_input(specs, seed=0)
    assert torch.equal(again.args[0], example.args[0])  # seeded


@pytest.mark.parametrize("texts,words", [
    (["3x"], "whole numbers"), (["a=3:float9"], "dtype"), (["a=3", "4"], "positional sizes come first"),
    (["a=3", "a=4"], "given twice"), (["a=3:float32:4"], "HIGH"), (["0x3"], "at least 1"), (["a b"], "[NAME=]SHAPE"),
])
def test_bad_input_specs_name_the_value_and_the_form(texts, words):
    with pytest.raises(BadInput) as caught:
        parse_input_specs(texts)
    assert words in str(caught.value) and caught.value.parameter == "input_size"


def test_input_data_follows_torchinfo():
    tensor = torch.zeros(1)
    assert as_model_input(tensor).args == (tensor,)
    assert as_model_input([tensor, 5]).args == (tensor, 5)
    assert as_model_input({"x": tensor}).kwargs == {"x": tensor}
    assert as_model_input(ModelInput((tensor,)), scale=2).kwargs == {"scale": 2}
    with pytest.raises(BadInput):
        as_model_input("not a tensor")


def test_the_command_line_takes_several_named_inputs(invoke, tmp_path):
    source = tmp_path / "towers.py"
    source.write_text(
        "import torch.nn as nn\n"
        "class T(nn.Module):\n"
        "    def __init__(self):\n        super().__init__(); self.l = nn.Linear(6, 4); self.e = nn.Embedding(9, 4)\n"
        "    def forward(self, x, ids):\n        return self.l(x) + self.e(ids).sum(1)\n"
        "def build():\n    return T()\n")
    result = invoke("shapes", "--model", f"{source}:build", "--input-size", "6", "--input-size", "ids=5:int64:9", "--format", "json")
    assert result.exit_code == 0, result.stderr
    import json

    table = json.loads(result.stdout)["tables"][0]
    assert table["input_shapes"] == {"arg0": [1, 6], "ids": [1, 5]}
    assert table["totals"]["macs"] == 6 * 4
    bad = invoke("shapes", "--model", f"{source}:build", "--input-size", "ids=5:int9")
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: --input-size") and bad.stderr.count("\n") == 1
