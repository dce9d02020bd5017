"""No file vizcli opens runs code: one planted payload per path of docs/security.md's table.

Each payload would create a marker file if anything unpickled, imported or ran it. Each test asserts
that the marker does not exist afterwards and that the answer is one ``Error:`` line (or, for a cache,
that the file is ignored).
"""

import io
import json
import os
import pickle
import shutil
import zipfile

import pytest

from tests.checks import one_error_line
from vizcli.common.errors import BadInput


class _Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload_bytes(marker) -> bytes:
    return pickle.dumps(_Payload(marker), protocol=2)


def _exported(tmp_path):
    import torch
    import torch.nn as nn

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 8, 8),)), str(path))
    return path


def _rewrite(source, target, change):
    """``source`` zip copied to ``target`` with ``change(name, data) -> data | None`` (None drops it), then extra entries."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        root = old.namelist()[0].split("/")[0]
        for entry in old.infolist():
            data = change(entry.filename[len(root) + 1:], old.read(entry.filename))
            if data is not None:
                new.writestr(entry, data)
        return root


def _with_config_entry(tmp_path, marker, kind):
    """A real .pt2 whose constants config gains an entry torch would unpickle (an opaque object or a pickled tensor)."""
    source = _exported(tmp_path)
    target = tmp_path / f"{kind}.pt2"
    file_name = "opaque_obj_0" if kind == "opaque" else "tensor_9"

    def change(name, data):
        if name.endswith("_weights_config.json"):
            config = json.loads(data)
            fqn = next(iter(config["config"]))
            entry = dict(config["config"][fqn])
            entry.update(path_name=file_name, use_pickle=kind == "pickled")
            config["config"]["planted"] = entry
            return json.dumps(config).encode()
        return data

    root = _rewrite(source, target, change)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(f"{root}/data/weights/{file_name}", _payload_bytes(marker))
    return target


@pytest.mark.parametrize("kind", ["opaque", "pickled"])
def test_a_pt2_entry_torch_would_unpickle_is_refused_before_torch_reads_it(invoke, tmp_path, kind):
    marker = tmp_path / "ran"
    poisoned = _with_config_entry(tmp_path, marker, kind)
    message = one_error_line(invoke("shapes", "--model", poisoned), 2)
    assert "refused" in message and "could run code" in message and "--model" in message
    assert not marker.exists()


def test_a_pt2_with_an_opaque_object_in_its_constants_never_runs(invoke, tmp_path):
    """The reported hole: torch's loader calls pickle.loads on data/constants/opaque_obj_* entries."""
    marker = tmp_path / "ran"
    source = _exported(tmp_path)
    target = tmp_path / "opaque.pt2"

    def change(name, data):
        if name.endswith("_constants_config.json"):
            return json.dumps({"config": {"obj": {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": False,
                                                  "tensor_meta": None}}}).encode()
        return data

    root = _rewrite(source, target, change)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(f"{root}/data/constants/opaque_obj_0", _payload_bytes(marker))
    message = one_error_line(invoke("shapes", "--model", target), 2)
    assert "opaque_obj_0" in message and "pickle.loads" in message
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["data/aotinductor/model/model.so", "data/weights/model.pt", "serialized_state_dict.pt",
                                   "data/constants/custom_obj_0"])
def test_pt2_entries_outside_the_graph_and_tensors_are_refused_by_name(invoke, tmp_path, entry):
    marker = tmp_path / "ran"
    source = _exported(tmp_path)
    target = tmp_path / "extra.pt2"
    root = _rewrite(source, target, lambda name, data: data)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(f"{root}/{entry}", _payload_bytes(marker))
    message = one_error_line(invoke("shapes", "--model", target), 2)
    assert repr(entry) in message and "refused" in message
    assert not marker.exists()


def test_pt2_example_inputs_that_import_anything_but_tensors_are_refused(tmp_path):
    from vizcli.common.untrusted import check_pt2_archive

    marker = tmp_path / "ran"
    source = _exported(tmp_path)
    target = tmp_path / "inputs.pt2"

    def change(name, data):
        if name.startswith("data/sample_inputs/"):
            buffer = io.BytesIO()
            import torch

            torch.save(((_Payload(marker),), {}), buffer)
            return buffer.getvalue()
        return data

    _rewrite(source, target, change)
    with pytest.raises(BadInput, match="would import 'posix.system'|would import 'os.system'"):
        check_pt2_archive(target, "inputs.pt2")
    assert not marker.exists()
    check_pt2_archive(source, "tiny.pt2")  # torch.export.save's own archive passes


def test_a_stack_global_whose_name_is_built_at_load_time_is_refused():
    from vizcli.common.untrusted import check_tensor_pickle

    built = b"\x80\x04\x8c\x02os\x94h\x00\x93."  # PROTO 4, 'os', MEMOIZE, BINGET 0, STACK_GLOBAL: one string, then a memo read
    with pytest.raises(BadInput, match="builds the name"):
        check_tensor_pickle(built, "test", "model", "x")
    with pytest.raises(BadInput, match="not a valid pickle"):
        check_tensor_pickle(b"\x80\x02c", "test", "model", "x")


@pytest.mark.parametrize("suffix", [".pth", ".pt"])
def test_a_pickled_checkpoint_is_refused_by_weights_only(invoke, tmp_path, suffix):
    marker = tmp_path / "ran"
    weights = tmp_path / f"evil{suffix}"
    import torch

    torch.save({"conv1.weight": _Payload(marker)}, weights)
    for command in (("shapes", "--weights", weights), ("roi", "examples/chelsea.png", "--boxes", "0,0,10,10",
                                                           "--weights", weights)):
        message = one_error_line(invoke(*command), 2)
        assert "refused" in message and "run code" in message
    assert not marker.exists()


def _folder_with_auto_map(tmp_path, marker, where="config.json"):
    from vizcli.embed.loading import bundled_model_path

    folder = tmp_path / "remote-code-model"
    shutil.copytree(bundled_model_path(), folder)
    (folder / "modeling_evil.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    config = json.loads((folder / where).read_text()) if (folder / where).exists() else {}
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel", "AutoConfig": "modeling_evil.EvilConfig"}
    (folder / where).write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_a_model_folder_with_auto_map_never_imports_its_code(invoke, tmp_path, where):
    marker = tmp_path / "ran"
    folder = _folder_with_auto_map(tmp_path, marker, where)
    for command in (("embed", "--model", folder, "hello"), ("shapes", "--model", folder, "--seq-len", "4")):
        message = one_error_line(invoke(*command), 2)
        assert "auto_map" in message and "modeling_evil" in message and "--model" in message
    assert not marker.exists()


def test_recorded_settings_that_name_a_remote_code_folder_do_not_run_it(invoke, tmp_path):
    """verify rebuilds the embedder from the output's recorded settings: those go through the same vetting."""
    import pyarrow.parquet as pq

    marker = tmp_path / "ran"
    output = tmp_path / "vectors.parquet"
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\n")
    assert invoke("embed", "--file", texts, "--keep-text", "-o", output).exit_code == 0
    folder = _folder_with_auto_map(tmp_path, marker)
    table = pq.read_table(output)
    metadata = dict(table.schema.metadata)
    key = next(name for name in metadata if b"vizcli" in name)
    recorded = json.loads(metadata[key])
    recorded["settings"]["model"] = str(folder)
    metadata[key] = json.dumps(recorded).encode()
    pq.write_table(table.replace_schema_metadata(metadata), output)
    from vizcli.outputs.verify import verify_output

    with pytest.raises(BadInput, match="auto_map"):
        verify_output(str(output))
    assert not marker.exists()


def test_a_dtype_probe_cache_holding_a_pickle_is_ignored(tmp_path, monkeypatch):
    from vizcli.common import cache

    marker = tmp_path / "ran"
    monkeypatch.setenv("VIZCLI_CACHE_DIR", str(tmp_path))
    (tmp_path / "dtype_probe.json").write_bytes(_payload_bytes(marker))
    assert cache.read_entry("dtype_probe.json", "any") is None
    assert not marker.exists()


def test_parquet_metadata_is_never_unpickled(invoke, tmp_path):
    """pyarrow's old PyExtensionType stored a pickle in the schema; reading it must not run it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    marker = tmp_path / "ran"
    field = pa.field("text", pa.string(), metadata={b"ARROW:extension:name": b"arrow.py_extension_type",
                                                     b"ARROW:extension:metadata": _payload_bytes(marker)})
    path = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"text": ["a cat", "a dog"]}, schema=pa.schema([field])), path)
    result = invoke("embed", "--file", path, "--column", "text")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    for verb in ("verify", "info"):
        assert "not one written by vizcli" in one_error_line(invoke(verb, path))
    assert not marker.exists()


def test_an_annotation_file_with_external_entities_is_refused(invoke, tmp_path):
    from vizcli.roi.annotations import read_annotations

    secret = tmp_path / "secret.txt"
    secret.write_text("10")
    voc = tmp_path / "chelsea.xml"
    voc.write_text(f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>'
                   "<annotation><object><name>cat</name><bndbox><xmin>&x;</xmin><ymin>0</ymin><xmax>20</xmax><ymax>20</ymax>"
                   "</bndbox></object></annotation>")
    annotations = read_annotations(str(voc))  # a bad file is a recorded problem; the run goes on without it
    assert annotations.images == []
    assert "EntitiesForbidden" in annotations.problems[0]["problem"]


def test_an_npy_unit_holding_objects_is_refused_not_unpickled(tmp_path):
    import numpy as np

    from vizcli.datasets.units import read_unit

    marker = tmp_path / "ran"
    unit = tmp_path / "part-00000.npz"
    with zipfile.ZipFile(unit, "w") as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
        archive.writestr("features.npy", buffer.getvalue())
    with pytest.raises(Exception) as raised:
        read_unit(unit)
    assert "pickle" in str(raised.value).lower() or isinstance(raised.value, BadInput)
    assert not marker.exists()


@pytest.mark.parametrize("command", [("roi", "examples/chelsea.png", "--boxes", "0,0,10,10", "--model", "os:system"),
                                     ("detect", "examples/chelsea.png", "--detector", "os.system"),
                                     ("shapes", "--model", "os.system")])
def test_names_the_user_did_not_write_as_code_are_never_imported(invoke, tmp_path, command):
    """Backbone, detector and torchvision model names are registry keys: nothing is imported or fetched by name."""
    before = set(os.sys.modules)
    message = one_error_line(invoke(*command), 2)
    assert command[-1] in message
    assert not any(name.startswith("vizcli_user_model") for name in set(os.sys.modules) - before)
