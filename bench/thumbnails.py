"""Thumbnail speed of a 12-megapixel phone photo: our upload path against plain Pillow.

Run: .venv/bin/python bench/thumbnails.py [--rounds N] [--write bench/RESULTS.md]
The photo is made here (4032x3024, camera-like noise so JPEG sizes are realistic).
"""

import argparse
import platform
import statistics
import time
from io import BytesIO

from PIL import Image, ImageFilter

from bench.report import publish
from portal.services.uploads import THUMBNAIL_SIZE, Upload, prepare, shrink


def phone_photo() -> bytes:
    # Blur 2 gives about 2.5 MB, what a 12 MP phone JPEG weighs; entropy decoding, which draft
    # mode cannot skip, grows with the file size.
    noise = Image.effect_noise((4032, 3024), 64).filter(ImageFilter.GaussianBlur(2))
    image = Image.merge("RGB", (noise, noise.rotate(180), noise.transpose(Image.FLIP_LEFT_RIGHT)))
    exif = image.getexif()
    exif[0x0112] = 6
    output = BytesIO()
    image.save(output, "JPEG", quality=90, exif=exif)
    return output.getvalue()


def draft_thumbnail(data: bytes) -> None:
    """The uploads' own shrink(): draft mode lets libjpeg decode at 1/8 scale."""
    shrink(Image.open(BytesIO(data)), THUMBNAIL_SIZE)


def plain_thumbnail(data: bytes) -> None:
    """Without draft mode: full decode, then Image.thumbnail resampling the full resolution."""
    image = Image.open(BytesIO(data))
    image.load()
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), reducing_gap=None)


def reduced_thumbnail(data: bytes) -> None:
    """Without draft mode, but with Pillow's default reducing_gap (reduce() before resampling)."""
    image = Image.open(BytesIO(data))
    image.load()
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))


def whole_upload(data: bytes) -> None:
    """Everything an upload does: checks, upright full view (1600 px), thumbnail, re-encoding."""
    prepare(Upload("IMG_0001.JPG", data), max_bytes=25 << 20, max_pixels=50_000_000)


def medians_ms(functions, data: bytes, rounds: int) -> list[float]:
    """Each function's median CPU time, the functions taking turns in every round, so that what
    else the machine does weighs on them alike."""
    timings: list[list[float]] = [[] for _ in functions]
    for function in functions:
        function(data)  # warm up
    for _ in range(rounds):
        for spent, function in zip(timings, functions, strict=True):
            start = time.process_time()
            function(data)
            spent.append((time.process_time() - start) * 1000)
    return [statistics.median(spent) for spent in timings]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write", help="append the table to this markdown file")
    args = parser.parse_args(argv)
    data = phone_photo()
    draft, plain, reduced, whole = medians_ms(
        [draft_thumbnail, plain_thumbnail, reduced_thumbnail, whole_upload], data, args.rounds
    )
    lines = [
        "## Thumbnail of a 12-megapixel JPEG",
        "",
        f"Photo: 4032x3024 JPEG, {len(data) / 1e6:.1f} MB; thumbnail {THUMBNAIL_SIZE} px; "
        f"median CPU time of {args.rounds} interleaved rounds; Pillow {Image.__version__}; "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}.",
        "",
        "| case | median |",
        "|---|---|",
        f"| thumbnail with the uploads' shrink() (JPEG draft mode), from the photo | "
        f"{draft:.1f} ms |",
        f"| `load()` + `Image.thumbnail(reducing_gap=None)`, no draft | {plain:.1f} ms "
        f"({plain / draft:.1f}x slower) |",
        f"| `load()` + `Image.thumbnail()` with its default reducing_gap, no draft | "
        f"{reduced:.1f} ms ({reduced / draft:.1f}x slower) |",
        "| whole upload (checks, upright 1600 px full view, thumbnail, re-encode) | "
        f"{whole:.1f} ms |",
        "",
        "- An upload decodes the photo once, at the scale its upright 1600 px view needs, and "
        "makes the thumbnail from that view: the last row is that whole path.",
        f"- Bar: median ≤ 60 ms: {draft:.1f} ms, {_verdict(draft <= 60)}; at least 3x faster "
        f"than Image.thumbnail without draft mode: {reduced / draft:.1f}x against its default "
        f"(reducing_gap 2.0), {_verdict(reduced / draft >= 3)}; {plain / draft:.1f}x against "
        f"reducing_gap=None, {_verdict(plain / draft >= 3)}.",
        "",
    ]
    publish(lines, args.write)


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
