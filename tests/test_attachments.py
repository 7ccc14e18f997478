"""Images and attachments: what is accepted, what is stored, who can fetch it, and cleanup."""

import gc
import re
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pillow_heif
import pytest
from PIL import Image, ImageChops, ImageStat
from sqlalchemy import func, select
from werkzeug.http import http_date, parse_options_header

from portal.extensions import db
from portal.files.routes import FILE_HEADERS
from portal.models import Attachment, Feed, Message, ScheduledService, ServiceStatus
from portal.services import messages as message_service
from portal.services.uploads import shrink

from .helpers import count_queries, set_private_messaging, update_row

GPS_IFD = 0x8825
ORIENTATION = 0x0112


# --- real image bytes, made here ------------------------------------------------------------

def two_tone(size=(400, 300)) -> Image.Image:
    """Red left half, blue right half: rotation shows in where the colours end up."""
    image = Image.new("RGB", size, (220, 30, 30))
    image.paste((30, 30, 220), (size[0] // 2, 0, size[0], size[1]))
    return image


def gradient(size) -> Image.Image:
    """Smooth colour across the picture: a resize that shifted or stretched it shows."""
    horizontal = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (horizontal, horizontal.transpose(Image.Transpose.ROTATE_180),
                               Image.linear_gradient("L").rotate(90).resize(size)))


def phone_jpeg(size=(400, 300)) -> bytes:
    """A phone photo taken sideways (orientation 6) at a client's home (GPS)."""
    image = two_tone(size)
    exif = image.getexif()
    exif[ORIENTATION] = 6
    exif[GPS_IFD] = {1: "N", 2: (41.0, 53.0, 24.0), 3: "W", 4: (87.0, 37.0, 48.0)}
    exif[0x010E] = "secret description"
    output = BytesIO()
    image.save(output, "JPEG", exif=exif, quality=90, comment=b"camera comment")
    return output.getvalue()


def encoded(image: Image.Image, image_format: str, **options) -> bytes:
    output = BytesIO()
    image.save(output, image_format, **options)
    return output.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (60, 40), colour) for colour in ("red", "green", "blue")]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=120,
                   loop=0, comment=b"gif comment")


def heic() -> bytes:
    pillow_heif.register_heif_opener()
    return encoded(two_tone((64, 48)), "HEIF")


def frame_bomb() -> bytes:
    """60 frames of a megapixel each: small on disk, heavy in memory."""
    frames = [Image.new("P", (1000, 1000), n) for n in range(60)]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])


def bomb() -> bytes:
    """A few kilobytes that decode to 100 megapixels."""
    return encoded(Image.new("1", (10_000, 10_000)), "PNG")


def pdf() -> bytes:
    return encoded(Image.new("RGB", (20, 20), "white"), "PDF")


FITS = (b"SIMPLE  =                    T" + b" " * 50 + b"BITPIX  =                    8"
        + b" " * 50 + b"NAXIS   =                    0" + b" " * 50 + b"END").ljust(2880, b" ")
PSD = b"8BPS\x00\x01" + b"\x00" * 6 + b"\x00\x03\x00\x00\x00\x10\x00\x00\x00\x10\x00\x08\x00\x03"


# --- helpers ---------------------------------------------------------------------------------

def feed_url(record, feed="conversation"):
    return f"/clients/{record.id}/feeds/{feed}"


def send(browser, record, files, text="", feed="conversation", htmx=True):
    data = {"text": text, "files": [(BytesIO(data), name) for name, data in files]}
    if htmx:
        return browser.htmx("POST", f"{feed_url(record, feed)}/messages", data=data,
                            content_type="multipart/form-data")
    return browser.submit(f"{feed_url(record, feed)}/messages", data,
                          content_type="multipart/form-data")


def attachments(app) -> list[Attachment]:
    with app.app_context():
        rows = list(db.session.scalars(select(Attachment).order_by(Attachment.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def stored_keys(app) -> list[str]:
    return app.extensions["storage"].keys()


def stored_bytes(app, key) -> bytes:
    return app.extensions["storage"].read(key)


def message_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Message.id)))


@pytest.fixture
def admin_browser(logged_in, admin):
    return logged_in(admin)


# --- images ------------------------------------------------------------------------------------

def test_phone_photo_is_upright_and_has_no_metadata(app, admin_browser, household):
    response = send(admin_browser, household, [("IMG_0042.JPG", phone_jpeg())])
    assert response.status_code == 200 and "HX-Retarget" not in response.headers
    [photo] = attachments(app)
    assert photo.kind == "image" and photo.content_type == "image/jpeg"
    assert (photo.width, photo.height) == (300, 400)
    for key in (photo.storage_key, photo.thumbnail_key):
        data = stored_bytes(app, key)
        image = Image.open(BytesIO(data))
        assert not image.getexif() and "exif" not in image.info and "comment" not in image.info
        assert b"secret description" not in data and b"camera comment" not in data
        assert b"Exif" not in data
    # Orientation 6 is a quarter turn clockwise: the red left half ends up on top.
    upright = Image.open(BytesIO(stored_bytes(app, photo.storage_key))).convert("RGB")
    top, bottom = upright.getpixel((150, 50)), upright.getpixel((150, 350))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


def test_large_photo_is_shrunk_upright_to_the_full_view_and_thumbnail(app, admin_browser,
                                                                        household):
    send(admin_browser, household, [("IMG_0043.JPG", phone_jpeg((3200, 2400)))])
    [photo] = attachments(app)
    assert (photo.width, photo.height) == (1200, 1600)  # upright, FULL_SIZE high
    thumbnail = Image.open(BytesIO(stored_bytes(app, photo.thumbnail_key)))
    assert thumbnail.size == (360, 480)
    top, bottom = thumbnail.convert("RGB").getpixel((180, 40)), thumbnail.getpixel((180, 440))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


def test_jpeg_decodes_at_the_smallest_scale_covering_the_fitted_size():
    # 4:3 into a 400 px square is 400x300: 1/8 of 3200x2400 covers it. thumbnail() alone would
    # ask for 400x400 and decode at 1/4, four times the pixels.
    image = Image.open(BytesIO(phone_jpeg((3200, 2400))))
    assert shrink(image, 400).size == (400, 300)
    assert image.size == (400, 300)  # what the decoder was set to produce: 1/8 scale
    png = Image.open(BytesIO(encoded(two_tone((800, 600)), "PNG")))
    assert shrink(png, 400).size == (400, 300)
    little = two_tone((40, 30))
    assert shrink(little, 400) is little  # never enlarged


def test_shrunk_jpeg_of_an_odd_size_matches_a_full_decode():
    # 3203x2403 at 1/8 is 401x301 with a partial last pixel: the draft box leaves it out.
    original = gradient((3203, 2403))
    data = encoded(original, "JPEG", quality=95)
    fast = shrink(Image.open(BytesIO(data)), 400)
    slow = Image.open(BytesIO(data)).convert("RGB").resize(fast.size, Image.Resampling.LANCZOS)
    assert fast.size == (400, 300)
    # Stretching the partial pixel over the row would shift the right side by half a pixel:
    # about twice this difference from the full decode there.
    right = (300, 0, 400, 300)
    difference = ImageChops.difference(fast.convert("RGB"), slow).convert("L").crop(right)
    assert ImageStat.Stat(difference).mean[0] < 0.3  # of 255


def test_multi_picture_jpeg_is_stored_as_jpeg(app, admin_browser, household):
    # Phones' JPEGs may carry a second picture (MPF): Pillow opens them as MPO.
    output = BytesIO()
    two_tone().save(output, "MPO", save_all=True, append_images=[two_tone((200, 150))])
    send(admin_browser, household, [("IMG_0044.JPG", output.getvalue())])
    [photo] = attachments(app)
    assert photo.content_type == "image/jpeg"
    assert Image.open(BytesIO(stored_bytes(app, photo.storage_key))).format == "JPEG"


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("screenshot.png", encoded(two_tone(), "PNG"), "image/png"),
        ("sticker.webp", encoded(two_tone(), "WEBP"), "image/webp"),
        ("IMG_0001.HEIC", heic(), "image/jpeg"),
        ("no-extension", encoded(two_tone(), "PNG"), "image/png"),
    ],
    ids=["png", "webp", "heic", "image-without-extension"],
)
def test_image_formats_are_accepted(app, admin_browser, household, name, data, content_type):
    send(admin_browser, household, [(name, data)])
    [image] = attachments(app)
    assert image.kind == "image" and image.content_type == content_type
    assert Image.open(BytesIO(stored_bytes(app, image.storage_key))).format in (
        "PNG", "WEBP", "JPEG"
    )


def test_animated_gif_keeps_frames_and_thumbnail_is_first_frame(app, admin_browser, household):
    send(admin_browser, household, [("dance.gif", animated_gif())])
    [gif] = attachments(app)
    full = Image.open(BytesIO(stored_bytes(app, gif.storage_key)))
    assert full.format == "GIF" and full.n_frames == 3 and "comment" not in full.info
    thumbnail = Image.open(BytesIO(stored_bytes(app, gif.thumbnail_key))).convert("RGB")
    assert getattr(thumbnail, "n_frames", 1) == 1
    red, green, blue = thumbnail.getpixel((5, 5))
    assert red > 200 and green < 60 and blue < 60


def test_polyglot_loses_its_payload(app, admin_browser, household):
    payload = b"<script>alert(document.cookie)</script>"
    send(admin_browser, household, [("funny.gif", encoded(two_tone(), "GIF") + payload)])
    [image] = attachments(app)
    assert payload not in stored_bytes(app, image.storage_key)


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("empty.jpg", b"", "“empty.jpg” is empty."),
        ("fake.png", b"<html><script>alert(1)</script></html>", "is not a photo we can show"),
        ("bomb.png", bomb(), "has too many pixels"),
        ("frames.gif", frame_bomb(), "has too many pixels"),
        ("half.jpg", phone_jpeg()[:2000], "is damaged or incomplete"),
        ("layers.jpg", PSD, "is not a photo we can show"),
        ("invoice.jpg", pdf(), "is not a photo we can show"),
        ("sky.jpg", FITS, "is not a photo we can show"),
        ("empty.txt", b"", "“empty.txt” is empty."),
    ],
    ids=["zero-byte-image", "fake-image", "bomb", "animation-bomb", "truncated", "psd", "pdf",
         "fits", "empty-file"],
)
def test_bad_files_are_refused_and_nothing_is_kept(app, admin_browser, household, name, data,
                                                   error):
    response = send(admin_browser, household, [("ok.png", encoded(two_tone(), "PNG")),
                                               (name, data)], text="with a bad file")
    assert response.headers["HX-Retarget"] == "#composer-conversation"
    body = response.get_data(as_text=True)
    assert error in body and ">with a bad file</textarea>" in body
    assert message_count(app) == 0 and attachments(app) == [] and stored_keys(app) == []


def test_bad_file_without_javascript_gets_the_page_with_the_error(app, admin_browser, household):
    response = send(admin_browser, household, [("fake.png", b"<html>")], htmx=False)
    assert response.status_code == 422 and "is not a photo we can show" in response.get_data(
        as_text=True)
    assert stored_keys(app) == []


# --- other files ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("invoice.pdf", pdf()),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("page.html", b"<html><script>alert(1)</script></html>"),
    ],
)
def test_other_files_are_always_downloaded(app, admin_browser, household, name, data):
    send(admin_browser, household, [(name, data)])
    [file] = attachments(app)
    assert file.kind == "file" and file.thumbnail_key is None
    response = admin_browser.get(f"/files/{file.token}")
    assert response.data == data
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert f'filename={name}' in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("notes\x00.txt.exe", "notes.txt.exe"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),
        ("x" * 300 + ".pdf", "x" * 251 + ".pdf"),
        ("<img src=x onerror=alert(1)>.txt", "<img src=x onerror=alert(1)>.txt"),
    ],
    ids=["dot-dot", "windows-path", "nul", "right-to-left-override", "300-characters", "html"],
)
def test_hostile_names_are_cleaned_and_escaped(app, admin_browser, household, sent, kept):
    send(admin_browser, household, [(sent, b"some bytes")])
    [file] = attachments(app)
    assert file.original_name == kept
    assert kept not in "".join(stored_keys(app))
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert "<img src=x onerror" not in page
    response = admin_browser.get(f"/files/{file.token}")
    disposition = response.headers["Content-Disposition"]
    assert "/" not in disposition and "\\" not in disposition and "\u202e" not in disposition


def test_nameless_file_gets_a_plain_name(app, admin_browser, household):
    send(admin_browser, household, [("", b"bytes without a name")])
    assert attachments(app)[0].original_name == "attachment"


def test_unicode_name_downloads_with_rfc6266_filename(app, admin_browser, household):
    send(admin_browser, household, [("Rechnung für Mochi.pdf", pdf())])
    [file] = attachments(app)
    disposition = admin_browser.get(f"/files/{file.token}").headers["Content-Disposition"]
    assert "filename*=UTF-8''Rechnung%20f%C3%BCr%20Mochi.pdf" in disposition


# --- how files are served: their names, and never kept -------------------------------------

def served_as(response) -> tuple[str, str]:
    """("inline" or "attachment", the file name a browser saves it under)."""
    disposition, options = parse_options_header(response.headers["Content-Disposition"])
    return disposition, options["filename"]


def assert_no_storage_key(responses, attachment) -> None:
    keys = [key for key in (attachment.storage_key, attachment.thumbnail_key) if key]
    for response in responses:
        for name, value in response.headers.items():
            assert not any(key in value for key in keys), (name, value)


@pytest.mark.parametrize(
    ("sent", "data", "photo", "thumbnail"),
    [
        ("Rex at the park.heic", heic(), "Rex at the park.jpg",
         "Rex at the park (thumbnail).webp"),
        ("IMG_0042.JPG", phone_jpeg(), "IMG_0042.JPG", "IMG_0042 (thumbnail).webp"),
        ("screenshot", encoded(two_tone(), "PNG"), "screenshot.png",
         "screenshot (thumbnail).webp"),
        ("v1.2 draft.png", encoded(two_tone(), "WEBP"), "v1.2 draft.webp",
         "v1.2 draft (thumbnail).webp"),
    ],
    ids=["heic-served-as-jpeg", "jpeg", "no-extension", "dotted-stem"],
)
def test_photos_are_named_by_the_sender_never_by_the_storage_key(
    app, admin_browser, household, sent, data, photo, thumbnail
):
    send(admin_browser, household, [(sent, data)])
    [image] = attachments(app)
    full = admin_browser.get(f"/files/{image.token}")
    small = admin_browser.get(f"/files/{image.token}/thumbnail")
    page = admin_browser.get(f"/files/{image.token}/view")
    assert served_as(full) == ("inline", photo)
    assert served_as(small) == ("inline", thumbnail)
    assert_no_storage_key([full, small, page], image)


def test_name_outside_ascii_has_an_ascii_fallback_and_rfc6266_filename(app, admin_browser,
                                                                        household):
    send(admin_browser, household, [("Möhre 🐶.jpg", phone_jpeg())])
    [image] = attachments(app)
    full = admin_browser.get(f"/files/{image.token}")
    small = admin_browser.get(f"/files/{image.token}/thumbnail")
    assert full.headers["Content-Disposition"] == (
        "inline; filename=\"Mohre .jpg\"; filename*=UTF-8''M%C3%B6hre%20%F0%9F%90%B6.jpg"
    )
    assert small.headers["Content-Disposition"] == (
        "inline; filename=\"Mohre  (thumbnail).webp\"; "
        "filename*=UTF-8''M%C3%B6hre%20%F0%9F%90%B6%20%28thumbnail%29.webp"
    )
    assert_no_storage_key([full, small], image)


@pytest.mark.parametrize(
    ("stored", "photo", "file"),
    [
        ("walk\r\nSet-Cookie: a=b.png", "walkSet-Cookie: a=b.png", "walkSet-Cookie: a=b.png"),
        ("../../etc/rex.png", "rex.png", "rex.png"),
        ("C:\\Users\\dana\\rex.jpg", "rex.png", "rex.jpg"),
        ('say "cheese"; x=y.png', 'say "cheese"; x=y.png', 'say "cheese"; x=y.png'),
        ("tab\there\x7f\u202egnp.gif", "tabheregnp.png", "tabheregnp.gif"),
        ("x" * 250 + ".heic", "x" * 115 + ".png", "x" * 115 + ".heic"),
        ("", "photo.png", "attachment"),
        ("\x07 . ", "photo.png", "attachment"),
    ],
    ids=["cr-lf", "unix-path", "windows-path", "quotes", "controls", "255-characters", "empty",
         "nothing-left"],
)
def test_names_stored_before_are_served_cleaned(app, admin_browser, household, stored, photo,
                                                file):
    """Rows written under older rules may hold anything: the served name is cleaned again."""
    send(admin_browser, household, [("walk.png", encoded(two_tone(), "PNG")), ("a.txt", b"a")])
    image, other = attachments(app)
    for row in (image, other):
        update_row(app, Attachment, row.id, original_name=stored)
    responses = {url: admin_browser.get(url) for url in (
        f"/files/{image.token}", f"/files/{image.token}/thumbnail", f"/files/{other.token}")}
    full, small, download = responses.values()
    assert served_as(full) == ("inline", photo)
    assert served_as(small) == ("inline", photo.rpartition(".")[0] + " (thumbnail).webp")
    assert served_as(download) == ("attachment", file)
    for response in responses.values():
        assert response.status_code == 200 and response.headers["Content-Disposition"].isascii()
    assert_no_storage_key(responses.values(), image)
    assert_no_storage_key(responses.values(), other)


def test_files_are_never_kept_by_the_browser(app, admin_browser, household):
    send(admin_browser, household, [("walk.png", encoded(two_tone(), "PNG")),
                                    ("notes.pdf", pdf())])
    photo, file = attachments(app)
    later = http_date(datetime.now(UTC) + timedelta(days=1))
    for url in (f"/files/{photo.token}", f"/files/{photo.token}/thumbnail",
                f"/files/{file.token}"):
        first = admin_browser.get(url)
        assert first.status_code == 200 and first.data
        assert first.headers["Cache-Control"] == "no-store", url
        for name in ("ETag", "Last-Modified", "Expires"):
            assert name not in first.headers, (url, name)
        assert all(first.headers[name] == value for name, value in FILE_HEADERS.items())
        # Nothing is kept to revalidate: whatever validators come, the whole file goes out.
        again = admin_browser.get(url, headers={"If-None-Match": "*",
                                                "If-Modified-Since": later})
        assert again.status_code == 200 and again.data == first.data, url
        # An interrupted download resumes where it stopped.
        assert first.headers["Accept-Ranges"] == "bytes"
        rest = admin_browser.get(url, headers={"Range": "bytes=10-"})
        assert rest.status_code == 206 and rest.data == first.data[10:], url
        assert rest.headers["Content-Range"] == f"bytes 10-{len(first.data) - 1}/{len(first.data)}"
        assert rest.headers["Cache-Control"] == "no-store"
        # A range past the end is refused, and the file opened to serve it is closed (an
        # open one would surface as a ResourceWarning, an error in this suite).
        past = admin_browser.get(url, headers={"Range": f"bytes={len(first.data) + 10}-"})
        assert past.status_code == 416, url
        gc.collect()
    # The full view is a page: no-store like every page (portal/headers.py).
    view = admin_browser.get(f"/files/{photo.token}/view")
    assert view.status_code == 200 and view.headers["Cache-Control"] == "no-store"


# --- messages with files -----------------------------------------------------------------------

def test_files_only_message_shows_thumbnails_and_chips(app, admin_browser, household):
    response = send(admin_browser, household, [
        ("one.png", encoded(two_tone(), "PNG")), ("two.jpg", phone_jpeg()),
        ("report.pdf", pdf()),
    ])
    body = response.get_data(as_text=True)
    photos, file = attachments(app)[:2], attachments(app)[2]
    for photo in photos:
        assert f'src="/files/{photo.token}/thumbnail"' in body
        assert f'href="/files/{photo.token}/view"' in body
    assert f'href="/files/{file.token}"' in body and "report.pdf" in body and ">PDF<" in body
    assert [a.position for a in attachments(app)] == [0, 1, 2]


def test_full_view_page_steps_through_the_message_photos(app, admin_browser, household):
    send(admin_browser, household, [("one.png", encoded(two_tone(), "PNG")),
                                    ("two.png", encoded(two_tone(), "PNG"))])
    first, second = attachments(app)
    page = admin_browser.get(f"/files/{first.token}/view").get_data(as_text=True)
    assert f'src="/files/{first.token}"' in page and "1 of 2" in page
    assert f'href="/files/{second.token}/view"' in page and "Back to messages" in page
    image = admin_browser.get(f"/files/{first.token}")
    assert image.headers["Content-Type"] == "image/png" and image.headers["X-Content-Type-Options"]


def test_file_limits_are_settings(app, admin_browser, household):
    app.config.update(UPLOAD_MAX_FILES=2, UPLOAD_MAX_FILE_BYTES=1000)
    too_many = send(admin_browser, household, [(f"{n}.txt", b"x") for n in range(3)])
    assert "Attach at most 2 files" in too_many.get_data(as_text=True)
    too_big = send(admin_browser, household, [("big.txt", b"x" * 1001)])
    assert "is larger than" in too_big.get_data(as_text=True)
    assert message_count(app) == 0 and stored_keys(app) == []


def test_request_over_max_content_length_is_refused(app, admin_browser, household):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    response = send(admin_browser, household, [("big.bin", b"x" * 20_000)])
    assert response.status_code == 413
    assert message_count(app) == 0 and stored_keys(app) == []


def test_write_is_all_or_nothing(app, admin_browser, household, monkeypatch):
    real_save = message_service.store_prepared
    calls = []

    def failing_save(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_save(*args)

    monkeypatch.setattr(message_service, "store_prepared", failing_save)
    with pytest.raises(RuntimeError):
        send(admin_browser, household, [("a.png", encoded(two_tone(), "PNG")),
                                        ("b.png", encoded(two_tone(), "PNG"))])
    assert len(calls) == 2
    assert message_count(app) == 0 and attachments(app) == [] and stored_keys(app) == []


def test_failed_commit_leaves_no_files(app, admin_browser, household, monkeypatch):
    def failing_commit():
        raise RuntimeError("database went away")

    with app.app_context():
        monkeypatch.setattr(db.session, "commit", failing_commit)
        with pytest.raises(RuntimeError):
            send(admin_browser, household, [("a.png", encoded(two_tone(), "PNG"))])
    monkeypatch.undo()
    assert message_count(app) == 0 and stored_keys(app) == []


def test_deleting_a_message_deletes_its_files(app, admin_browser, household):
    send(admin_browser, household, [("a.png", encoded(two_tone(), "PNG")), ("b.pdf", pdf())])
    files = attachments(app)
    assert len(stored_keys(app)) == 3
    with app.app_context():
        message_id = db.session.scalar(select(Message.id))
    admin_browser.htmx("POST", f"/messages/{message_id}/delete")
    for file in files:
        for url in (f"/files/{file.token}", f"/files/{file.token}/thumbnail",
                    f"/files/{file.token}/view"):
            assert admin_browser.get(url).status_code == 404
    assert attachments(app) == [] and stored_keys(app) == []


# --- who may fetch files ---------------------------------------------------------------

def file_urls(token):
    return [f"/files/{token}", f"/files/{token}/thumbnail", f"/files/{token}/view"]


def test_files_follow_the_feed_policy(
    app, admin_browser, household, assigned_staff, unassigned_staff, household_login,
    other_household_login, stranger_admin, logged_in, client
):
    send(admin_browser, household, [("walk.png", encoded(two_tone(), "PNG"))])
    [photo] = attachments(app)
    expected = {assigned_staff: 200, household_login: 200, unassigned_staff: 404,
                other_household_login: 404, stranger_admin: 404}
    for user, status in expected.items():
        browser = logged_in(user)
        for url in file_urls(photo.token):
            assert browser.get(url).status_code == status, (user.name, url)
    assert client.get(f"/files/{photo.token}").status_code == 302
    assert admin_browser.get("/files/not-a-real-token").status_code == 404


def test_private_files_follow_private_rules(
    app, business, admin_browser, household, assigned_staff, household_login, logged_in
):
    set_private_messaging(app, business, True)
    send(admin_browser, household, [("invoice.pdf", pdf())], feed="private")
    [file] = attachments(app)
    assert logged_in(household_login).get(f"/files/{file.token}").status_code == 200
    assert logged_in(assigned_staff).get(f"/files/{file.token}").status_code == 404
    set_private_messaging(app, business, False)
    assert admin_browser.get(f"/files/{file.token}").status_code == 404


def test_file_access_ends_when_feed_access_ends(
    app, admin_browser, household, assigned_staff, logged_in
):
    send(admin_browser, household, [("walk.png", encoded(two_tone(), "PNG"))])
    [photo] = attachments(app)
    staff_browser = logged_in(assigned_staff)
    assert staff_browser.get(f"/files/{photo.token}/thumbnail").status_code == 200
    with app.app_context():
        db.session.scalar(select(ScheduledService)).status = ServiceStatus.CANCELLED
        db.session.commit()
    assert staff_browser.get(f"/files/{photo.token}/thumbnail").status_code == 404


def test_feed_page_queries_stay_constant_with_attachments(app, admin_browser, household, admin):
    send(admin_browser, household, [("a.png", encoded(two_tone(), "PNG"))])
    few = count_queries(app, admin_browser, feed_url(household))
    for _ in range(5):
        send(admin_browser, household, [("b.png", encoded(two_tone(), "PNG")), ("c.txt", b"c")])
    many = count_queries(app, admin_browser, feed_url(household))
    assert few == many <= 10  # with the delivery lines' two


def test_message_feed_is_private_in_private_feed_only(app, business, admin_browser, household):
    set_private_messaging(app, business, True)
    send(admin_browser, household, [("p.png", encoded(two_tone(), "PNG"))], feed="private")
    with app.app_context():
        assert db.session.scalar(select(Message.feed)) == Feed.PRIVATE
    page = admin_browser.get(feed_url(household)).get_data(as_text=True)
    assert not re.search(r"/files/[^\"]+/thumbnail", page)
