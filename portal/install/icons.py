"""The app's icons, drawn once per size: the portal's paw, white on its accent colour, or the
business's logo on white.

Drawn four times larger and scaled down, for smooth edges. A maskable icon keeps the paw inside
the middle 80% that every platform's mask leaves whole; the others fill the square with the
accent (iOS and Android round the corners themselves).
"""

import io
from functools import lru_cache

from PIL import Image, ImageDraw

from portal.storage import storage

ACCENT = (31, 111, 92)  # --accent in static/portal.css
WHITE = (255, 255, 255)
OVERSAMPLE = 4
# The paw of templates/base.html's brand mark, on its 24-unit grid: four toes and the pad.
TOES = ((6, 9, 2.2, 2.8), (10, 5, 2.2, 2.8), (14.5, 5, 2.2, 2.8), (18.5, 9, 2.2, 2.8))
PAD = (12, 16.2, 5.9, 4.4)


@lru_cache(maxsize=16)
def paw_png(size: int, *, maskable: bool = False) -> bytes:
    """A square PNG of `size` pixels."""
    big = size * OVERSAMPLE
    image = Image.new("RGB", (big, big), ACCENT)
    draw = ImageDraw.Draw(image)
    # The paw spans 60% of a maskable icon (inside its safe zone), 70% of the others.
    span = big * (0.6 if maskable else 0.7)
    unit = span / 24
    offset = (big - span) / 2

    def ellipse(cx: float, cy: float, rx: float, ry: float) -> None:
        draw.ellipse(
            (offset + (cx - rx) * unit, offset + (cy - ry) * unit,
             offset + (cx + rx) * unit, offset + (cy + ry) * unit),
            fill=WHITE,
        )

    for toe in TOES:
        ellipse(*toe)
    ellipse(*PAD)
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@lru_cache(maxsize=64)
def logo_png(logo_key: str, size: int, *, maskable: bool = False) -> bytes:
    """A square PNG of `size` pixels: the stored logo (a WebP, see services.settings), scaled to
    fit 80% of it (60% for a maskable icon), centred on white. Opaque: iOS turns transparent
    corners black."""
    with Image.open(io.BytesIO(storage().read(logo_key))) as stored:
        logo = stored.convert("RGBA")
    box = size * (0.6 if maskable else 0.8)
    scale = min(box / logo.width, box / logo.height)
    logo = logo.resize((max(1, round(logo.width * scale)), max(1, round(logo.height * scale))),
                       Image.Resampling.LANCZOS)
    image = Image.new("RGB", (size, size), WHITE)
    image.paste(logo, ((size - logo.width) // 2, (size - logo.height) // 2), logo)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def favicon_ico() -> bytes:
    """/favicon.ico, which browsers ask for whatever the page names: 16, 32 and 48 pixels."""
    image = Image.open(io.BytesIO(paw_png(48)))
    buffer = io.BytesIO()
    image.save(buffer, "ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    return buffer.getvalue()
