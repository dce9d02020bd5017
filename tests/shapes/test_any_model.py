"""shapes for any model: your own factory (file or module), the bundled BERT against analytic counts, bad specs."""

import json
from pathlib import Path

import pytest

from tests.checks import one_error_line
from vizcli.shapes.any_model import is_any_model, parse_model_args
from vizcli.shapes.report import run_any_shapes

TINY_NET = '''
import torch.nn as nn


def build(width=8, classes=10):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, classes))


def broken():
    raise RuntimeError("no GPU here")


def not_a_module():
    return 42
'''


@pytest.fixture
def tiny_net(tmp_path):
    path = tmp_path / "tiny_net.py"
    path.write_text(TINY_NET, encoding="utf-8")
    return path


def test_a_factory_in_a_file_is_counted_exactly(tiny_net):
    report = run_any_shapes(f"{tiny_net}:build", [], "3x20x24", {"width": 16, "classes": 5}, device="cpu")
    (run,) = report.runs
    assert run.trace.error is None and report.task == "custom"
    assert report.parameters == sum(p.numel() for p in report.model.parameters()) == 3 * 9 * 16 + 16 + 16 * 5 + 5
    conv = 20 * 24 * 16 * 3 * 9  # output pixels × output channels × inputs per output
    assert sum(record.macs for record in run.trace.records) == conv + 16 * 5
    assert "build(width=16, classes=5)" in report.weights_note


def test_the_readme_example_model_is_counted_exactly():
    example = Path(__file__).resolve().parents[2] / "examples" / "my_model.py"
    report = run_any_shapes(f"{example}:build", [], "3x32x32", {"width": 32}, device="cpu")
    convolutions = 32 * 32 * 32 * 3 * 9 + 16 * 16 * 64 * 32 * 9  # output pixels × channels × inputs per output
    assert sum(record.macs for record in report.runs[0].trace.records) == convolutions + 64 * 10 == 5_603_968
    assert report.parameters == sum(p.numel() for p in report.model.parameters()) == 20_042


def test_a_module_factory_takes_model_args():
    import torchvision

    report = run_any_shapes("torchvision.models:resnet18", [], "3x64x64", {"num_classes": 7}, device="cpu")
    expected = torchvision.models.resnet18(num_classes=7)
    assert report.parameters == sum(p.numel() for p in expected.parameters())
    assert report.runs[0].trace.output.shape == (1, 7)


@pytest.mark.parametrize("length", [8, 64])
def test_the_bundled_bert_counts_every_layer_analytically(length):
    report = run_any_shapes("minilm", [], seq_len=length, device="cpu")
    config = report.model.config
    hidden, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = length * (4 * hidden**2 + 2 * hidden * inner) + 2 * length**2 * hidden  # Q,K,V,O + FFN; QKᵀ and AV
    records = report.runs[0].trace.records
    for layer in range(layers):
        assert sum(r.macs for r in records if r.name.startswith(f"encoder.layer.{layer}.")) == per_layer
    assert sum(r.macs for r in records if r.name.startswith("pooler.")) == hidden**2  # tanh(W·h[CLS] + b)
    assert sum(r.macs for r in records) == layers * per_layer + hidden**2
    assert report.parameters == sum(p.numel() for p in report.model.parameters())


def test_text_is_tokenized_by_the_models_tokenizer():
    report = run_any_shapes("minilm", [], text="a cat sits on the mat", device="cpu")
    assert report.runs[0].trace.input_shape == (1, 8)  # [CLS] a cat sits on the mat [SEP]
    assert report.runs[0].steps == ["tokenized by the model's tokenizer: 8 tokens"]


def test_spec_recognition_and_model_args(tmp_path):
    assert is_any_model("minilm") and is_any_model("x.py:build") and is_any_model("pkg.mod:make")
    assert not is_any_model("resnet18") and not is_any_model("vit_b_16")
    (tmp_path / "config.json").write_text("{}")
    assert is_any_model(str(tmp_path))
    assert parse_model_args(["width=64", "name=tiny", "sizes=[1, 2]", "ratio=0.5"]) == {"width": 64, "name": "tiny", "sizes": [1, 2],
                                                                                         "ratio": 0.5}


@pytest.mark.parametrize("args, code, fragment", [
    (["--model", "{net}:missing", "--input-size", "3x8x8"], 2, "has no callable 'missing'"),
    (["--model", "{net}:broken"], 1, "broken() raised RuntimeError: no GPU here"),
    (["--model", "{net}:not_a_module"], 2, "returned int, not a torch.nn.Module"),
    (["--model", "{net}:build", "--model-arg", "depth=3"], 2, "does not take these arguments"),
    (["--model", "{net}:build", "--model-arg", "width"], 2, "--model-arg width: give key=value"),
    (["--model", "{net}:build", "--seq-len", "8"], 2, "give --input-size CxHxW for your own model"),
    (["--model", "nowhere.py:build"], 2, "no such file"),
    (["--model", "no_such_package_x:build"], 2, "cannot import no_such_package_x"),
    (["--model", "minilm", "--seq-len", "100000"], 2, "--seq-len 100000: use 2..512"),
    (["--model", "minilm", "--input-size", "3x8x8"], 2, "a text model takes --text"),
    (["--model", "resnet18", "--seq-len", "8"], 2, "are for your own or text models"),
])
def test_bad_specs_are_one_line(invoke, tiny_net, args, code, fragment):
    result = invoke("shapes", *[arg.replace("{net}", str(tiny_net)) for arg in args])
    assert fragment in one_error_line(result, code)


def test_the_cli_prints_a_factory_model_as_json(invoke, tiny_net):
    result = invoke("shapes", "--model", f"{tiny_net}:build", "--model-arg", "width=4", "--input-size", "3x8x8", "--format", "json")
    assert result.exit_code == 0, result.stderr
    totals = json.loads(result.stdout)["tables"][0]["totals"]
    assert totals["parameters"] == 3 * 9 * 4 + 4 + 4 * 10 + 10
    assert totals["macs"] == 8 * 8 * 4 * 3 * 9 + 4 * 10


def test_bert_attention_gets_rows_of_its_own_with_named_axes():
    from vizcli.shapes.render import shapes_rows

    length = 16
    report = run_any_shapes("minilm", [], seq_len=length, device="cpu")
    config = report.model.config
    hidden, heads, layers = config.hidden_size, config.num_attention_heads, config.num_hidden_layers
    run = report.runs[0]
    attention = [r for r in run.trace.records if r.kind == "attention"]
    assert [r.name for r in attention] == [f"encoder.layer.{i}.attention.self.attention" for i in range(layers)]
    assert all(r.macs == 2 * length**2 * hidden and r.params == 0 for r in attention)  # QKᵀ and ·V, nothing else
    assert all(r.shape == (1, heads, length, hidden // heads) for r in attention)
    rows = {row["name"]: row for row in shapes_rows(report, run, 3)}
    assert rows["encoder.layer.0.attention.self.attention"]["axes"] == f"heads {heads} × seq {length} × head {hidden // heads}"
    assert rows["encoder.layer.0.intermediate.dense"]["axes"] == f"seq {length} × hidden {config.intermediate_size}"
    assert rows["pooler.activation"]["axes"] == f"hidden {hidden}"  # tanh(W·h[CLS] + b): the notes' pooler_output


def test_eager_attention_shows_its_two_matmuls_and_the_softmax():
    from transformers import BertConfig, BertModel

    from vizcli.shapes.records import text_axes
    from vizcli.shapes.trace import trace_shapes

    config = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                        vocab_size=100, attn_implementation="eager")
    model = BertModel(config)
    length = 10
    import torch

    trace = trace_shapes(model, torch.randint(0, 100, (1, length)), method="hooks")
    assert trace.error is None
    layer = [r for r in trace.records if r.name.startswith("encoder.layer.0.attention.self.") and r.kind in ("matmul", "softmax")]
    assert [(r.kind, r.call, r.shape, r.macs) for r in layer] == [
        ("matmul", 0, (1, 4, length, length), length * length * 64),  # QKᵀ: L·L·(H/heads) per head
        ("softmax", 0, (1, 4, length, length), 0),
        ("matmul", 1, (1, 4, length, 16), length * length * 64),  # ·V
    ]
    assert [text_axes(r.shape, length, r.kind, r.call) for r in layer] == [
        f"heads 4 × seq {length} × seq {length}", f"heads 4 × seq {length} × seq {length}", f"heads 4 × seq {length} × head 16"]
    per_layer = length * (4 * 64**2 + 2 * 64 * 128) + 2 * length**2 * 64
    assert sum(r.macs for r in trace.records if r.name.startswith("encoder.layer.1.")) == per_layer


def test_the_bert_mermaid_flow_runs_from_token_ids_to_pooler_output(invoke):
    import re

    result = invoke("shapes", "--model", "minilm", "--seq-len", "8", "--format", "mermaid")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.splitlines()[3] == "flowchart TD"
    defined = set(re.findall(r"^    (\w+)\[", text, flags=re.M))
    edges = re.findall(r"^    (\w+) -->(?:\|\"([^\"]*)\"\|)? (\w+)$", text, flags=re.M)
    assert edges and all(source in defined and target in defined for source, _, target in edges)
    assert sum(label == "residual" for _, label, _ in edges) == 12  # two a layer, six layers
    assert [label for source, label, target in edges if target == "encoder_layer_0_attention_self_attention"] == ["Q", "K", "V"]
    assert ("embeddings_dropout", "", "encoder_layer_0_attention_self_query") in edges
    assert ("encoder_layer_5_output_LayerNorm", "h[CLS]", "pooler_dense") in edges
    assert ("pooler_activation", "", "output") in edges
    assert 'output["pooler_output: hidden 384 = tanh(W·h[CLS] + b)"]' in text
    assert text.count("subgraph encoder_layer_") == 6


def _tiny_program(tmp_path):
    import torch
    import torch.nn as nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 5)).eval()
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 16, 20),)), str(path))
    return path, model


def test_an_exported_program_is_counted_exactly_with_its_own_example(tmp_path):
    path, model = _tiny_program(tmp_path)
    report = run_any_shapes(str(path), [], device="cpu")
    (run,) = report.runs
    assert run.trace.error is None and run.trace.input_shape == (1, 3, 16, 20)
    assert report.parameters == sum(p.numel() for p in model.parameters())
    assert sum(r.macs for r in run.trace.records) == 16 * 20 * 8 * 3 * 9 + 8 * 5  # the convolution and the linear layer
    assert [(r.name, r.kind) for r in run.trace.records][:3] == [("0.conv2d", "conv2d"), ("1.batch_norm", "batch_norm"),
                                                                 ("2.relu", "relu")]  # ATen operators, named after their modules
    assert run.trace.records[0].shape == (1, 8, 16, 20)
    assert run.trace.records[0].params == 3 * 9 * 8 + 8  # the weights the graph reads, at their first reader
    assert sum(r.params for r in run.trace.records) == report.parameters
    assert "weights_only=True" in report.weights_note


def test_an_exported_program_with_pickled_code_is_refused_and_never_runs(invoke, tmp_path):
    import os
    import zipfile

    import torch

    path, _ = _tiny_program(tmp_path)
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    poisoned = tmp_path / "poisoned.pt2"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(poisoned, "w") as target:
        for entry in source.infolist():
            data = source.read(entry.filename)
            if entry.filename.endswith("sample_inputs/model.pt"):
                import io

                buffer = io.BytesIO()
                torch.save(((Payload(),), {}), buffer)
                data = buffer.getvalue()
            target.writestr(entry, data)
    message = one_error_line(invoke("shapes", "--model", poisoned), 2)
    assert "refused" in message and "could run code" in message
    assert not marker.exists()
    (tmp_path / "junk.pt2").write_bytes(b"not a zip")
    assert "a .pt2 is a zip archive" in one_error_line(invoke("shapes", "--model", tmp_path / "junk.pt2"), 2)


def test_a_name_in_the_hugging_face_cache_is_a_text_model(tmp_path, monkeypatch):
    import shutil

    from huggingface_hub import constants

    from vizcli.embed.loading import bundled_model_path

    snapshot = tmp_path / "hub" / "models--vizcli-test--minilm-copy" / "snapshots" / "0123abcd"
    shutil.copytree(bundled_model_path(), snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert is_any_model("vizcli-test/minilm-copy") and not is_any_model("./x/y")
    cached = run_any_shapes("vizcli-test/minilm-copy", [], seq_len=8, device="cpu")
    bundled = run_any_shapes("minilm", [], seq_len=8, device="cpu")
    assert cached.model_name == "vizcli-test/minilm-copy"
    assert sum(r.macs for r in cached.runs[0].trace.records) == sum(r.macs for r in bundled.runs[0].trace.records)
    assert cached.parameters == bundled.parameters
    with pytest.raises(Exception, match="not in the Hugging Face cache"):
        run_any_shapes("vizcli-test/not-there", [], seq_len=8, device="cpu")


FACTORIES = '''
import torch.nn as nn


def fails_inside(width=4):
    return len(1, 2, 3)  # the user's own bug: a TypeError raised inside the factory


def build(width=4):
    return nn.Linear(width, 2)
'''


def test_a_type_error_inside_a_factory_is_its_failure_and_wrong_arguments_are_bad_input(tmp_path):
    from vizcli.common.errors import BadInput, RunFailure
    from vizcli.shapes.any_model import load_factory

    (tmp_path / "nets.py").write_text(FACTORIES)
    with pytest.raises(RunFailure, match=r"fails_inside\(\) raised TypeError: len\(\) takes exactly one argument"):
        load_factory(f"{tmp_path}/nets.py:fails_inside", {})
    with pytest.raises(BadInput, match=r"build\(width\) does not take these arguments .*'depth'"):
        load_factory(f"{tmp_path}/nets.py:build", {"depth": 3})
    assert load_factory(f"{tmp_path}/nets.py:build", {"width": 6}).module.in_features == 6


def test_a_bare_name_is_the_librarys_model_and_a_folder_needs_a_path(tmp_path, monkeypatch):
    from vizcli.common.errors import BadInput
    from vizcli.common.models import check_model_name
    from vizcli.shapes.any_model import model_files

    for name in ("resnet18", "mybert"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert not is_any_model("resnet18") and is_any_model("./resnet18") and is_any_model(str(tmp_path / "resnet18"))
    assert not is_any_model("mybert") and is_any_model("./mybert")
    with pytest.raises(BadInput, match=r"a folder is named by a path: \./mybert"):
        check_model_name("mybert")
    assert model_files("resnet18") == [] and model_files("./mybert") == ["mybert/config.json"]
    assert model_files("nets.py:build") == ["nets.py"] and model_files("m.pt2") == ["m.pt2"]


def test_a_config_declaring_far_more_than_its_weights_is_refused_before_allocating(tmp_path):
    from vizcli.common.errors import BadInput
    from vizcli.shapes.any_model import check_declared_size, declared_parameters

    small = {"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 2, "intermediate_size": 32,
             "max_position_embeddings": 16, "type_vocab_size": 2}
    assert declared_parameters(small) == 118 * 8 + 2 * (4 * 64 + 2 * 8 * 32 + 9 * 8 + 32) + 64
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\0" * 4096)
    check_declared_size(small, weights, "m")
    huge = {**small, "vocab_size": 25_000_000, "hidden_size": 768}  # a 77 GB embedding
    with pytest.raises(BadInput, match=r"declares about 7\d\.\d GB of float32 parameters, but model.safetensors holds 4,096 bytes"):
        check_declared_size(huge, weights, "m")
    for key, value in (("vocab_size", -5), ("hidden_size", True), ("num_hidden_layers", 2.5), ("hidden_size", 1 << 40)):
        with pytest.raises(BadInput, match=f"config.json: {key} is"):
            check_declared_size({**small, key: value}, weights, "m")


def test_an_exported_program_switches_modes_so_a_training_step_runs(tmp_path):
    import torch

    from vizcli.shapes.any_model import load_exported
    from vizcli.shapes.memory import training_step

    path, model = _tiny_program(tmp_path)
    loaded = load_exported(str(path))
    loaded.module.train()
    assert loaded.module.training and all(child.training for child in loaded.module.children())
    loaded.module.eval()
    assert not loaded.module.training
    step = training_step(loaded.module, loaded.example, "sgd")
    assert step.parameters == 4 * sum(p.numel() for p in model.parameters()) and step.saved_activations > 0
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(loaded.example), model.eval()(loaded.example))
