"""Image loading shared by every image command.

``load_image`` turns a path (or ``-`` for bytes on stdin) into an 8-bit RGB image plus an
``ImageRecord`` of everything done to it, so commands can show the user exactly which
pixels the network saw. ``imagenet_tensor`` applies the standard ImageNet preprocessing.
"""

from __future__ import annotations

import io
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

from vizcli.common.errors import BadInput
from vizcli.common.files import require_file

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default limit (about 9459 x 9459)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_EXIF_ORIENTATION_TAG = 0x0112
_ORIENTATION_NAMES = {
    2: "mirrored",
    3: "rotated 180°",
    4: "flipped vertically",
    5: "transposed",
    6: "rotated 90° clockwise",
    7: "transversed",
    8: "rotated 90° counter-clockwise",
}


@dataclass
class ImageRecord:
    """What was done to one image, in order, for display."""

    source: str
    steps: list[str] = field(default_factory=list)
    exif_orientation: int = 1  # the EXIF orientation tag that was applied (1 = none)


@dataclass
class LoadedImage:
    """An 8-bit RGB Pillow image, its record, and the pixel limit every later size must respect."""

    image: Any  # PIL.Image.Image, mode "RGB"
    record: ImageRecord
    max_pixels: int = DEFAULT_MAX_PIXELS


def check_pixels(width: int, height: int, max_pixels: int, source: str, what: str) -> None:
    """``BadInput`` when an image of ``width``×``height`` (declared or about to be made) exceeds ``max_pixels``.

    Called before every allocation the pipeline makes, so a 60000×1 PNG that passes the file's
    own check is still refused before its resize to shorter side 256 asks for gigabytes.
    """
    if width * height > max_pixels:
        raise BadInput(
            f"image {source}: {what} {width}x{height} = {width * height:,} pixels, above the limit of "
            f"{max_pixels:,} (a possible decompression bomb); raise max_pixels=N if you trust it"
        )


def pixel_limit(max_pixels: int | None) -> int:
    """The limit to use: the default for None, else ``max_pixels`` if it is at least 1."""
    if max_pixels is None:
        return DEFAULT_MAX_PIXELS
    if max_pixels < 1:
        raise BadInput("must be at least 1 (it limits the pixels of every image made)", parameter="max_pixels", value=max_pixels)
    return max_pixels


def load_image(source: str, max_pixels: int = DEFAULT_MAX_PIXELS, data: bytes | None = None) -> LoadedImage:
    """Read ``source`` (a path, or ``-`` for stdin; ``data`` when the bytes are already in hand,
    ``source`` then only names them) as 8-bit RGB with EXIF orientation applied.

    GIF and other animations give their first frame; grayscale, palette, CMYK, 16-bit and
    alpha images are converted (alpha is composited on white). Raises ``BadInput`` naming the
    file and the problem for missing, empty, non-image, truncated or oversized files.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    data = _read_source(source) if data is None else data
    if not data:
        raise BadInput(f"image {source}: file is empty; give a JPEG, PNG, WebP, BMP, TIFF or GIF file")
    Image.MAX_IMAGE_PIXELS = None  # we check the declared size ourselves, before decoding
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadInput(
            f"image {source}: not a readable image; give a JPEG, PNG, WebP, BMP, TIFF or GIF file"
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise BadInput(f"image {source}: cannot be read ({_reason(error)}); check the file") from None
    width, height = image.size
    check_pixels(width, height, max_pixels, source, "declares")
    if width < 1 or height < 1:
        raise BadInput(f"image {source}: has no pixels ({width}x{height})")
    record = ImageRecord(source=source)
    record.steps.append(f"read {image.format or 'image'} {width}×{height} {image.mode}")
    try:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(0)
            record.steps.append(f"first frame of {frames}")
        image.load()
        orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        if orientation in _ORIENTATION_NAMES:
            image = ImageOps.exif_transpose(image)  # type: ignore[assignment]
            record.exif_orientation = int(orientation)
            record.steps.append(f"EXIF orientation {orientation}: {_ORIENTATION_NAMES[orientation]} → {image.width}×{image.height}")
        image = _to_rgb(image, record)
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise BadInput(
            f"image {source}: cannot be decoded ({_reason(error)}); the file may be truncated or corrupt; check it or re-export it"
        ) from None
    return LoadedImage(image=image, record=record, max_pixels=max_pixels)


def _read_source(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    path = require_file(source, "image", "an image file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise BadInput(f"image {source}: cannot be read ({_reason(error)})") from None


def _reason(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())


def _to_rgb(image: Any, record: ImageRecord) -> Any:
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16"):
            scale = 65535.0
        else:
            peak = float(array.max()) if array.size else 0.0
            scale = 65535.0 if peak > 255 else (1.0 if mode == "F" and peak <= 1.0 else 255.0)
        eight_bit = np.clip(np.rint(array / scale * 255.0), 0, 255).astype(np.uint8)
        record.steps.append(f"converted {mode} to 8-bit (÷{scale:g}×255) → RGB")
        return Image.fromarray(eight_bit, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        record.steps.append("palette with transparency → RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        record.steps.append(f"{mode} composited on white → RGB")
        return Image.alpha_composite(background, rgba).convert("RGB")
    record.steps.append(f"converted {mode} → RGB")
    return image.convert("RGB")


def resize_image(loaded: LoadedImage, max_size: int) -> tuple[Any, float]:
    """Downscale so the longest side is at most ``max_size``; returns (image, scale factor)."""
    from PIL import Image

    image = loaded.image
    longest = max(image.size)
    if longest <= max_size:
        return image, 1.0
    scale = max_size / longest
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    check_pixels(*new_size, loaded.max_pixels, loaded.record.source, "would be resized to")
    resized = image.resize(new_size, Image.Resampling.BILINEAR)
    loaded.record.steps.append(f"resized to {new_size[0]}×{new_size[1]} (longest side {max_size})")
    return resized, new_size[0] / image.width


def imagenet_tensor(loaded: LoadedImage, resize: int | None = 256, crop: int | None = 224) -> Any:
    """The standard ImageNet preprocessing: resize shorter side, centre-crop, normalise.

    Returns ``Tensor[3, H, W]`` float32; ``resize=None, crop=None`` keeps the image's own size.
    """
    from PIL import Image

    image = loaded.image
    record = loaded.record
    if resize is not None:
        width, height = image.size
        if width <= height:
            new_size = (resize, int(resize * height / width))
        else:
            new_size = (int(resize * width / height), resize)
        check_pixels(*new_size, loaded.max_pixels, record.source, f"resizing its shorter side to {resize} gives")
        image = image.resize(new_size, Image.Resampling.BILINEAR)
        record.steps.append(f"resized shorter side to {resize} → {new_size[0]}×{new_size[1]}")
    if crop is not None:
        width, height = image.size
        if width < crop or height < crop:
            raise BadInput(f"image {record.source}: {width}×{height} is smaller than the {crop}×{crop} crop")
        left = int(round((width - crop) / 2.0))
        top = int(round((height - crop) / 2.0))
        image = image.crop((left, top, left + crop, top + crop))
        record.steps.append(f"centre-cropped to {crop}×{crop}")
    tensor = to_normalized_tensor(image)
    record.steps.append(f"normalised with ImageNet mean/std → tensor {'×'.join(map(str, tensor.shape))} float32")
    return tensor


def unit_tensor(loaded: LoadedImage) -> Any:
    """The image at its own size as ``Tensor[3, H, W]`` float32 in [0, 1], unnormalised (what
    torchvision's detection models take: they resize and normalise inside)."""
    import numpy as np
    import torch

    array = np.asarray(loaded.image, dtype=np.float32) / 255.0
    loaded.record.steps.append(f"scaled to [0, 1] → tensor 3×{array.shape[0]}×{array.shape[1]} float32 (the model resizes and normalises)")
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def to_normalized_tensor(image: Any) -> Any:
    """An RGB Pillow image → ``Tensor[3, H, W]`` float32 normalised with ImageNet mean/std."""
    import numpy as np
    import torch

    array = np.asarray(image, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (tensor - mean) / std
