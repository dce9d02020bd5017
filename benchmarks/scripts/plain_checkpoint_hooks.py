"""Peer: what a PyTorch user writes by hand to compare two ResNet18 checkpoints on one image.

Per layer (state-dict keys before their last dot): ‖B − A‖ / ‖A‖ and cosine in float64; then the image,
prepared as torchvision's ResNet18 weights prepare it, through the model under A and under B with forward
hooks on every leaf module: each output's mean, std, min, max, fraction of zeros and NaN/Inf count, and its
relative change and cosine between A and B. Prints the result as JSON.

    python plain_checkpoint_hooks.py A.pth B.pth IMAGE
"""

import json
import sys

import torch
import torchvision
from PIL import Image
from torchvision.transforms import functional as F


def compare(a, b):
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    norm_a, norm_b = a.norm(), b.norm()
    return {"relative_change": float((b - a).norm() / norm_a), "cosine": float(a @ b / (norm_a * norm_b))}


def statistics(values):
    values = values.detach()
    finite = values[torch.isfinite(values)]
    std, mean = torch.std_mean(finite, correction=0)
    return {"mean": float(mean), "std": float(std), "min": float(finite.min()), "max": float(finite.max()),
            "zero_fraction": float((values == 0).sum()) / values.numel(), "nan": int(torch.isnan(values).sum()),
            "inf": int(torch.isinf(values).sum())}


def main(path_a, path_b, image_path):
    torch.set_num_threads(2)
    a = torch.load(path_a, weights_only=True)
    b = torch.load(path_b, weights_only=True)
    groups = {}
    for key, value in a.items():
        if value.is_floating_point() and key in b:
            groups.setdefault(key.rsplit(".", 1)[0], []).append(key)
    layers = {layer: compare(torch.cat([a[k].flatten() for k in keys]), torch.cat([b[k].flatten() for k in keys]))
              for layer, keys in groups.items()}
    image = Image.open(image_path).convert("RGB")
    tensor = F.center_crop(F.resize(F.pil_to_tensor(image), 256), 224).float() / 255
    example = F.normalize(tensor, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).unsqueeze(0)
    model = torchvision.models.resnet18().eval()
    outputs, rows = {}, []

    def keep(name):
        def hook(module, inputs, output):
            outputs.setdefault(name, []).append(output.detach().clone())
            rows.append({"name": name, "a": statistics(output)})
        return hook

    def against(name):
        def hook(module, inputs, output):
            before = outputs[name].pop(0)
            rows.append({"name": name, "b": statistics(output), **compare(before, output)})
        return hook

    leaves = [(name, module) for name, module in model.named_modules() if not list(module.children())]
    for state, make in ((a, keep), (b, against)):
        model.load_state_dict(state)
        handles = [module.register_forward_hook(make(name)) for name, module in leaves]
        with torch.no_grad():
            model(example)
        for handle in handles:
            handle.remove()
    print(json.dumps({"layers": layers, "activations": rows}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
