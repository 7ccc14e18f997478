"""Turning uploaded files into what we store: decoded and re-encoded images, or attachments.

An image is whatever Pillow decodes with the allow-listed formats, whatever its name or claimed
type. Stored images are re-encoded upright from their pixels, so no EXIF (GPS), XMP or comment
survives, nor anything a polyglot hid after the image data.
"""

import unicodedata
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath, PureWindowsPath

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from pillow_heif import register_heif_opener

from portal.models import AttachmentKind

register_heif_opener()

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "HEIF")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".heic", ".heif", ".psd",
                  ".bmp", ".tif", ".tiff", ".avif", ".fits", ".fit"}
PHOTO_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif"}
FULL_SIZE = 1600
THUMBNAIL_SIZE = 480
MAX_FRAMES = 300
ATTACHMENT_TYPE = "application/octet-stream"


class UploadError(ValueError):
    """A file we refuse, with a message for the person who chose it."""


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    claimed_type: str | None = None


@dataclass(frozen=True)
class PreparedFile:
    kind: AttachmentKind
    original_name: str
    content_type: str
    data: bytes
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None


def clean_filename(raw: str | None, limit: int = 255) -> str:
    """The last path part, without control or direction characters, at most `limit` long."""
    name = raw or ""
    name = PureWindowsPath(PurePosixPath(name.replace("\x00", "")).name).name
    # Control and format characters (Cc, Cf) include the direction overrides and isolates that
    # make "invoice\u202egnp.exe" read as "invoiceexe.png".
    name = "".join(
        char for char in unicodedata.normalize("NFC", name)
        if unicodedata.category(char) not in ("Cc", "Cf")
    ).strip(" .")
    if not name:
        return "attachment"
    if len(name) > limit:
        _, dot, suffix = name.rpartition(".")
        keep = dot + suffix if dot and len(suffix) <= 10 else ""
        name = name[: limit - len(keep)] + keep
    return name


def claims_image(name: str, claimed_type: str | None) -> bool:
    """Whether the sender expects a photo: then one we cannot decode is an error, not a file.
    (SVG is a document, not a photo: it is kept as an attachment and only ever downloaded.)"""
    suffix = PurePosixPath(name.lower()).suffix
    return suffix in IMAGE_SUFFIXES or claimed_type in PHOTO_TYPES


def prepare(upload: Upload, *, max_bytes: int, max_pixels: int) -> PreparedFile:
    name = clean_filename(upload.filename)
    if not upload.data:
        raise UploadError(f"“{name}” is empty.")
    if len(upload.data) > max_bytes:
        raise UploadError(f"“{name}” is larger than {max_bytes // (1024 * 1024)} MB.")
    try:
        return _prepare_image(name, upload.data, max_pixels)
    except UnidentifiedImageError:
        if claims_image(name, upload.claimed_type):
            raise UploadError(
                f"“{name}” is not a photo we can show. Use JPEG, PNG, WebP, GIF or HEIC."
            ) from None
        return PreparedFile(AttachmentKind.FILE, name, ATTACHMENT_TYPE, upload.data)


def _prepare_image(name: str, data: bytes, max_pixels: int) -> PreparedFile:
    with warnings.catch_warnings():
        # Pillow only warns between the limit and twice the limit: refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = _open_checked(data, max_pixels)
            if getattr(image, "n_frames", 1) > 1 and image.format == "GIF":
                return _animated_gif(name, image)
            return _still_image(name, image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(f"“{name}” has too many pixels to be a photo.") from None
        except UnidentifiedImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise UploadError(f"“{name}” is damaged or incomplete.") from error


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    image = Image.open(BytesIO(data), formats=ALLOWED_FORMATS)
    width, height = image.size
    frames = getattr(image, "n_frames", 1)
    # Animations are kept frame by frame, each at most FULL_SIZE square: budget their total.
    if width * height > max_pixels or frames > MAX_FRAMES:
        raise Image.DecompressionBombError("too many pixels")
    if frames > 1 and frames * min(width * height, FULL_SIZE * FULL_SIZE) > max_pixels:
        raise Image.DecompressionBombError("too many frames")
    return image


def _still_image(name: str, image: Image.Image) -> PreparedFile:
    source_format = image.format
    image = ImageOps.exif_transpose(shrink(image, FULL_SIZE))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if source_format in ("JPEG", "MPO", "HEIF") and not has_alpha:  # MPO: a multi-picture JPEG
        full, content_type = _encode(image.convert("RGB"), "JPEG", quality=85), "image/jpeg"
    elif source_format == "WEBP":
        full, content_type = _encode(image, "WEBP", quality=85), "image/webp"
    else:
        full, content_type = _encode(image, "PNG"), "image/png"
    return PreparedFile(
        AttachmentKind.IMAGE, name, content_type, full, _thumbnail(image), *image.size
    )


def _animated_gif(name: str, image: Image.Image) -> PreparedFile:
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100))
        still = frame.convert("RGBA")
        still.thumbnail((FULL_SIZE, FULL_SIZE))
        frames.append(_without_metadata(still))
    output = BytesIO()
    frames[0].save(
        output, "GIF", save_all=True, append_images=frames[1:], duration=durations,
        loop=image.info.get("loop", 0), disposal=2,
    )
    return PreparedFile(
        AttachmentKind.IMAGE, name, "image/gif", output.getvalue(), _thumbnail(frames[0]),
        *frames[0].size,
    )


def shrink(image: Image.Image, side: int) -> Image.Image:
    """A new image: this one fitted into a side x side square (or this one, when it fits).

    A JPEG (or HEIF) not yet decoded is decoded at the smallest scale that still covers the
    fitted size (draft mode), where most of the speed is: thumbnail() asks the decoder for the
    whole square, which for a 4:3 photo is twice the scale needed, four times the pixels. The
    image given is then configured for that scale: use the one returned."""
    fitted = _fitted(image.size, side)
    if fitted == image.size:
        return image
    drafted = image.draft(None, fitted)
    box = drafted[1] if drafted else None  # the whole picture, in the reduced scale's pixels
    return image.resize(fitted, Image.Resampling.LANCZOS, box=box, reducing_gap=2.0)


def _fitted(size: tuple[int, int], side: int) -> tuple[int, int]:
    width, height = size
    if width <= side and height <= side:
        return size
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _thumbnail(image: Image.Image) -> bytes:
    small = shrink(image, THUMBNAIL_SIZE)
    if small.mode not in ("RGB", "RGBA"):
        small = small.convert("RGBA" if "transparency" in small.info else "RGB")
    return _encode(small, "WEBP", quality=80)


def _without_metadata(image: Image.Image) -> Image.Image:
    clean = image.copy()
    icc = image.info.get("icc_profile")
    clean.info.clear()
    if icc:
        clean.info["icc_profile"] = icc
    return clean


def _encode(image: Image.Image, image_format: str, **options) -> bytes:
    clean = _without_metadata(image)
    output = BytesIO()
    if image_format in ("JPEG", "WEBP"):
        options["exif"] = b""
    if clean.info.get("icc_profile"):
        options["icc_profile"] = clean.info["icc_profile"]
    clean.save(output, image_format, **options)
    return output.getvalue()
