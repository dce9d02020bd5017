import os
import zipfile

import torch

from tests.checks import check_form, one_error_line


def test_broken_checkpoints(invoke, tmp_path):
    import torchvision
    from safetensors.torch import save_file

    state = torchvision.models.resnet18().state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "corrupt.safetensors").write_bytes(data[:100] + b"\xff" * 100 + data[200:1000])
    torch.save(state, tmp_path / "w.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "w.pth").read_bytes()[:5000])
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"conv1.weight": Payload()}, tmp_path / "evil.pth")
    for name, fragment in (("corrupt.safetensors", "not a valid safetensors file"), ("cut.pth", "cannot be read"), ("evil.pth", "refused")):
        result = invoke("shapes", "--weights", tmp_path / name)
        assert result.exit_code == 2, (name, result.stderr)
        assert fragment in result.stderr and result.stderr.count("\n") == 1
        check_form(result.stderr)
    assert not marker.exists()


def test_checkpoint_that_declares_gigabytes_is_refused_before_loading(invoke, tmp_path):
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data/0", b"\0" * (64 << 20))
    assert bomb.stat().st_size < 1 << 20
    message = one_error_line(invoke("shapes", "--weights", bomb))
    assert "zip bomb" in message and "67,108,864 bytes" in message
