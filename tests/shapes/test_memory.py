"""Memory figures: parameters per dtype, and the activations a training step saves, checked against autograd."""

import json

import pytest
import torch
import torchvision

from vizcli.shapes.memory import parameter_bytes, saved_activation_bytes


def _saved_by_hooks(model, example):
    """The reference: every tensor autograd packs for backward, once per storage, parameters excluded."""
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(example)
    return sum(storages.values())


@pytest.mark.parametrize("name", ["resnet18", "vit_b_16"])
def test_saved_activations_equal_what_autograd_saves(name):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name)
    example = torch.randn(2, 3, 224, 224)
    counted = saved_activation_bytes(model, example)
    assert counted == _saved_by_hooks(model, example)
    assert counted > 10 * 2**20


def test_parameter_bytes_follow_the_dtype():
    model = torchvision.models.resnet18()
    full, buffers = parameter_bytes(model, "float32")
    half, _ = parameter_bytes(model, "bfloat16")
    assert full == 11_689_512 * 4 and half == full // 2
    assert buffers == sum(b.numel() * b.element_size() for b in model.buffers())


def test_training_step_in_json_adds_up(invoke):
    result = invoke("shapes", "--depth", "1", "--format", "json", "--train", "--batch-size", "2", "--optimizer", "sgd")
    assert result.exit_code == 0, result.stderr
    step = json.loads(result.stdout)["memory"]["training"]
    assert step["parameters"] == step["gradients"] == step["optimizer_state"] == 11_689_512 * 4
    assert step["total"] == sum(step[key] for key in ("parameters", "gradients", "optimizer_state", "saved_activations"))


def test_a_model_whose_forward_fails_in_training_mode_is_one_bad_input():
    from vizcli.common.errors import BadInput
    from vizcli.shapes.memory import training_step

    class TwoInputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 2)

        def forward(self, x, y):
            return self.linear(x) + y

    model = TwoInputs()
    with pytest.raises(BadInput, match="training-mode forward pass failed .*missing 1 required positional argument"):
        training_step(model, torch.zeros(1, 4), "sgd")
