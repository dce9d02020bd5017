"""Image loading: every format and mode converts to 8-bit RGB; every bad file is exit 2."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.checks import CHELSEA, check_form, one_error_line
from tests.conftest import EXAMPLES
from vizcli.common.errors import BadInput
from vizcli.common.images import imagenet_tensor, load_image


def _noise_image(fmt, size=(64, 48)):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def _png_declaring(width, height):
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


BROKEN = {
    "empty.jpg": b"",
    "random.jpg": bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8)),
    "random.png": bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
    "text.png": b"this is not a picture\n",
    "bomb.png": _png_declaring(100_000, 100_000),
    **{f"cut{int(f * 100)}.{ext.lower()}": _noise_image(ext)[: int(len(_noise_image(ext)) * f)]
       for ext in ("JPEG", "PNG", "WEBP") for f in (0.05, 0.3, 0.6, 0.95)},
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_images_exit_2_one_line(invoke, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BROKEN[name])
    result = invoke("shapes", path, "--depth", "1")
    assert result.exit_code == 2, (name, result.stdout[-300:])
    assert result.stderr.startswith(f"Error: image {path}") and result.stderr.count("\n") == 1
    check_form(result.stderr)


@pytest.mark.parametrize(
    "name, make",
    [("many.gif", lambda p: Image.new("RGB", (8, 8)).save(p, save_all=True, append_images=[Image.new("RGB", (8, 8), (i % 255, 0, 0)) for i in range(300)])),
     ("cmyk.jpg", lambda p: Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(p)),
     ("deep.png", lambda p: Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50).save(p)),
     ("one.png", lambda p: Image.new("RGB", (1, 1), (9, 9, 9)).save(p))],
)
def test_unusual_but_valid_images_work(invoke, tmp_path, name, make):
    path = tmp_path / name
    make(path)
    result = invoke("shapes", path, "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert "computations: 69" in result.stdout
    roi = invoke("roi", path, "--boxes", "0,0,1,1", "--quiet")
    assert roi.exit_code == 0, roi.stderr


def _save(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    "name, fmt",
    [("a.jpg", "JPEG"), ("a.png", "PNG"), ("a.webp", "WEBP"), ("a.bmp", "BMP"), ("a.tiff", "TIFF"), ("a.gif", "GIF")],
)
def test_formats_load_as_rgb(tmp_path, name, fmt):
    image = Image.new("RGB", (40, 30), (200, 100, 50))
    path = _save(tmp_path, image, name, format=fmt)
    loaded = load_image(str(path))
    assert loaded.image.mode == "RGB"
    assert loaded.image.size == (40, 30)
    assert loaded.record.steps[0].startswith(f"read {fmt} 40×30 ")
    r, g, b = loaded.image.getpixel((20, 15))
    assert abs(r - 200) < 12 and abs(g - 100) < 12 and abs(b - 50) < 12


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "PA", "CMYK", "I;16", "1"])
def test_modes_convert_to_rgb(tmp_path, mode):
    image = Image.new("RGB", (16, 8), (255, 0, 0)).convert(mode) if mode not in ("I;16", "PA") else None
    if mode == "I;16":
        image = Image.fromarray(np.full((8, 16), 65535, dtype=np.uint16))
    if mode == "PA":
        image = Image.new("PA", (16, 8))
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "PA" else "PNG")
    path = _save(tmp_path, image, f"m.{fmt.lower()}", format=fmt)
    loaded = load_image(str(path))
    assert loaded.image.mode == "RGB"
    assert loaded.image.size == (16, 8)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    array = np.full((4, 4), 32896, dtype=np.uint16)  # half of 65535 → 128
    path = _save(tmp_path, Image.fromarray(array), "16.png")
    loaded = load_image(str(path))
    assert loaded.image.getpixel((0, 0)) == (128, 128, 128)
    assert any("8-bit" in step for step in loaded.record.steps)


def test_transparent_pixels_composite_on_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    loaded = load_image(str(_save(tmp_path, image, "t.png")))
    assert loaded.image.getpixel((0, 0)) == (255, 255, 255)


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), color) for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    loaded = load_image(str(path))
    assert any("first frame of 3" in step for step in loaded.record.steps)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise
    path = _save(tmp_path, image, "o.jpg", exif=exif.tobytes())
    loaded = load_image(str(path))
    assert loaded.image.size == (20, 40)
    assert any("EXIF orientation 6" in step for step in loaded.record.steps)


def test_stdin_bytes(monkeypatch):
    data = (EXAMPLES / "chelsea.png").read_bytes()

    class _Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr("sys.stdin", _Stdin)
    loaded = load_image("-")
    assert loaded.image.size == (451, 300)


def _png_header_only(width, height):
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "setup, fragment",
    [
        (lambda p: p / "missing.png", "no such file"),
        (lambda p: p, "is a folder"),
        (lambda p: _write(p / "empty.jpg", b""), "empty"),
        (lambda p: _write(p / "text.jpg", b"hello, not an image"), "not a readable image"),
        (lambda p: _write(p / "bomb.png", _png_header_only(100_000, 100_000)), "decompression bomb"),
    ],
    ids=["missing", "directory", "empty", "text", "bomb"],
)
def test_bad_files_raise_bad_input(tmp_path, setup, fragment):
    path = setup(tmp_path)
    with pytest.raises(BadInput, match=fragment):
        load_image(str(path))


@pytest.mark.parametrize("fmt, cut", [("JPEG", 0.5), ("PNG", 0.5), ("PNG", 0.9), ("JPEG", 0.1)])
def test_truncated_files_raise_bad_input(tmp_path, fmt, cut):
    buffer = io.BytesIO()
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    noise.save(buffer, format=fmt)
    data = buffer.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(BadInput, match=str(path)):
        load_image(str(path))


def test_max_pixels_is_configurable(tmp_path):
    path = _save(tmp_path, Image.new("RGB", (100, 100)), "big.png")
    with pytest.raises(BadInput, match="max_pixels="):
        load_image(str(path), max_pixels=9999)
    assert load_image(str(path), max_pixels=10000).image.size == (100, 100)


def test_imagenet_preprocessing_records_every_step():
    loaded = load_image(str(EXAMPLES / "chelsea.png"))
    tensor = imagenet_tensor(loaded)
    assert tuple(tensor.shape) == (3, 224, 224)
    steps = " | ".join(loaded.record.steps)
    assert "451×300" in steps and "384×256" in steps and "224×224" in steps
    assert loaded.record.steps[-1].endswith("tensor 3×224×224 float32")


@pytest.mark.parametrize("size, fragment", [((60000, 1), "resizing its shorter side to 256 gives"), ((20000, 10), "resizing")])
def test_every_image_size_the_pipeline_makes_is_checked(invoke, tmp_path, size, fragment):
    path = tmp_path / "thin.png"
    Image.new("RGB", size, (200, 10, 10)).save(path)
    message = one_error_line(invoke("shapes", path, "--depth", "1"))
    assert fragment in message and "--max-pixels" in message


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_pixels_must_be_positive(invoke, value):
    message = one_error_line(invoke("shapes", CHELSEA, "--max-pixels", value))
    assert f"--max-pixels {value}" in message
