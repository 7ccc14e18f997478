"""Photos and files in the composer, in a real browser: picker, drag and drop, paste, previews
that can be removed, upload progress, thumbnails, the full view, deletion and refusals.

Every image is made here with Pillow; a sideways phone photo (EXIF orientation 6) must come
back upright, and a file that only claims to be a photo must be refused.
"""

import base64
import re
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Locator, Page, expect

from portal.feed_component.query import size_label

from .helpers import WAIT

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
ORIENTATION = 0x0112
FILE_URL = re.compile(r"^/files/[A-Za-z0-9_-]{20,}$")
RED, BLUE = (220, 30, 30), (30, 30, 220)


# --- real files, made here -----------------------------------------------------------------

def sideways_jpeg() -> bytes:
    """A landscape phone photo stored sideways (orientation 6): red left half, blue right.
    Shown upright it is portrait, red on top and blue below."""
    image = Image.new("RGB", (400, 300), RED)
    image.paste(BLUE, (200, 0, 400, 300))
    exif = image.getexif()
    exif[ORIENTATION] = 6
    output = BytesIO()
    image.save(output, "JPEG", exif=exif, quality=90)
    return output.getvalue()


def garden_png() -> bytes:
    image = Image.new("RGB", (320, 240), (90, 160, 80))
    draw = ImageDraw.Draw(image)
    draw.ellipse((200, 30, 280, 110), fill=(250, 210, 60))
    draw.rectangle((0, 180, 320, 240), fill=(60, 120, 50))
    output = BytesIO()
    image.save(output, "PNG")
    return output.getvalue()


def small_pdf() -> bytes:
    output = BytesIO()
    Image.new("RGB", (120, 80), "white").save(output, "PDF")
    return output.getvalue()


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def preview_size(size: int) -> str:
    """The size as portal.js's sizeLabel writes it (Math.round, so halves round up)."""
    if size < 1024:
        return f"{size} B"
    if size < 1048576:
        return f"{int(size / 1024 + 0.5)} KB"
    return f"{size / 1048576:.1f} MB"


# --- page helpers --------------------------------------------------------------------------

def profile_url(household) -> str:
    return f"/clients/{household.id}"


def wait_for_htmx(page: Page) -> None:
    # htmx and portal.js load deferred; before them the composer posts the plain way.
    page.wait_for_function(
        "() => window.htmx !== undefined && document.readyState === 'complete'"
        " && document.documentElement.classList.contains('js')",
        timeout=WAIT,
    )


def mark_page(page: Page) -> None:
    page.evaluate("window.__noReload = 1")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload") == 1, "the page was reloaded"


def previews(page: Page) -> Locator:
    return page.locator("#attachment-previews li.preview")


def send_button(page: Page) -> Locator:
    return page.locator("#feed form.composer").get_by_role("button", name="Send")


def expect_loaded(image: Locator, width: int, height: int) -> None:
    """The image decoded at its natural size (thumbnails load lazily: bring it into view)."""
    image.scroll_into_view_if_needed()
    expect(image).to_have_js_property("naturalWidth", width, timeout=WAIT)
    expect(image).to_have_js_property("naturalHeight", height, timeout=WAIT)


def expect_preview_images_loaded(page: Page, count: int) -> None:
    images = page.locator("#attachment-previews li.preview img")
    expect(images).to_have_count(count, timeout=WAIT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#attachment-previews img')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=WAIT,
    )


def record_progress(page: Page) -> None:
    """Notes each state of the upload bar, and each progress event htmx passes on."""
    page.evaluate(
        """() => {
            window.__bar = [];
            window.__progressEvents = [];
            const bar = document.getElementById("upload-progress");
            new MutationObserver(() => window.__bar.push({hidden: bar.hidden, value: bar.value}))
                .observe(bar, {attributes: true, attributeFilter: ["hidden", "value"]});
            document.addEventListener("htmx:xhr:progress", (event) => window.__progressEvents.push(
                {computable: event.detail.lengthComputable, loaded: event.detail.loaded}));
        }"""
    )


def record_refusals(page: Page) -> list[str]:
    """Counts composer requests portal.js cancels; returns the list of posts that did go out."""
    page.evaluate(
        """() => {
            window.__refused = 0;
            document.addEventListener("htmx:beforeRequest", (event) => {
                if (event.defaultPrevented) window.__refused += 1;
            });
        }"""
    )
    posts: list[str] = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    return posts


def data_transfer(page: Page, name: str, data: bytes, mime: str):
    """A DataTransfer holding one File, made in the page as a drag or a paste would carry it."""
    return page.evaluate_handle(
        """([name, encoded, type]) => {
            const bytes = Uint8Array.from(atob(encoded), (char) => char.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type}));
            return transfer;
        }""",
        [name, base64.b64encode(data).decode(), mime],
    )


def dispatch(element: Locator, event_type: str, transfer) -> bool:
    """Fires a drag event or a paste carrying `transfer`; False when a listener cancelled it."""
    return element.evaluate(
        """(element, [type, transfer]) => element.dispatchEvent(type === "paste"
            ? new ClipboardEvent(type, {bubbles: true, cancelable: true, clipboardData: transfer})
            : new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: transfer}))""",
        [event_type, transfer],
    )


def image_colours(image: Locator) -> dict:
    """The colours near the top and bottom middle of a loaded image, read through a canvas."""
    return image.evaluate(
        """(img) => {
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            const context = canvas.getContext("2d");
            context.drawImage(img, 0, 0);
            const at = (x, y) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
            const middle = Math.floor(canvas.width / 2);
            return {top: at(middle, 10), bottom: at(middle, canvas.height - 10)};
        }"""
    )


def near(colour, expected, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))


def horizontal_overflow(page: Page) -> int:
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return {
        "jpeg": write(tmp_path, "biscuit-sideways.jpg", sideways_jpeg()),
        "png": write(tmp_path, "biscuit-garden.png", garden_png()),
        "pdf": write(tmp_path, "vaccination-record.pdf", small_pdf()),
    }


@pytest.fixture
def photo_message(household, admin, make_message):
    """A message from the admin team with the sideways photo, the garden photo and a PDF."""
    return make_message(
        household, admin, "Photos from today's walk",
        files=[("biscuit-sideways.jpg", sideways_jpeg()), ("biscuit-garden.png", garden_png()),
               ("vaccination-record.pdf", small_pdf())],
    )


# --- the tests -----------------------------------------------------------------------------

def test_pick_preview_remove_and_send_photos_and_a_pdf(
    log_in, household, admin, files, screenshot_dir
):
    page = log_in(admin, **DESKTOP)
    page.goto(profile_url(household))
    wait_for_htmx(page)
    mark_page(page)
    pdf_size = files["pdf"].stat().st_size

    page.locator("#message-files").set_input_files([files["jpeg"], files["png"], files["pdf"]])
    preview_list = page.locator("#attachment-previews")
    expect(preview_list).to_be_visible(timeout=WAIT)
    expect(previews(page)).to_have_count(3, timeout=WAIT)
    expect_preview_images_loaded(page, 2)
    pdf_chip = previews(page).filter(has_text="vaccination-record.pdf")
    expect(pdf_chip.locator(".file-type")).to_have_text("PDF", timeout=WAIT)
    expect(pdf_chip.locator(".preview-name")).to_have_text(
        f"vaccination-record.pdf · {preview_size(pdf_size)}", timeout=WAIT
    )
    expect(pdf_chip.locator("img")).to_have_count(0, timeout=WAIT)
    # portal.js keeps an empty, hidden note for later errors: none may show.
    expect(page.locator("#feed form.composer .field-error:visible")).to_have_count(0, timeout=WAIT)

    # Remove the garden photo with its own button, then add it back with the picker.
    page.get_by_role("button", name="Remove biscuit-garden.png").click()
    expect(previews(page)).to_have_count(2, timeout=WAIT)
    expect(preview_list).not_to_contain_text("biscuit-garden.png", timeout=WAIT)
    expect(page.locator("#message-text")).to_be_focused(timeout=WAIT)
    assert page.locator("#message-files").evaluate("input => input.files.length") == 2
    page.locator("#message-files").set_input_files(files["png"])
    expect(previews(page)).to_have_count(3, timeout=WAIT)
    expect(previews(page).locator(".preview-name")).to_contain_text(
        ["biscuit-sideways.jpg", "vaccination-record.pdf", "biscuit-garden.png"], timeout=WAIT
    )
    expect_preview_images_loaded(page, 2)
    # The real input carries exactly the listed files: this is what the form posts.
    assert page.locator("#message-files").evaluate(
        "input => [...input.files].map(file => file.name)"
    ) == ["biscuit-sideways.jpg", "vaccination-record.pdf", "biscuit-garden.png"]

    page.locator("#message-text").fill("Biscuit in the garden, and his vaccination record.")
    page.locator("#feed form.composer").scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / "attachments-previews.png", full_page=True)

    record_progress(page)
    send_button(page).click()
    sent = page.locator("#feed .messages article.message.own")
    expect(sent.locator(".message-text")).to_have_text(
        "Biscuit in the garden, and his vaccination record.", timeout=WAIT
    )
    # The bar was shown with some progress while the files went up, and is hidden again.
    bar_states = page.evaluate("window.__bar")
    assert any(not state["hidden"] and state["value"] > 0 for state in bar_states), (
        bar_states, page.evaluate("window.__progressEvents"),
    )
    expect(page.locator("#upload-progress")).to_be_hidden(timeout=WAIT)

    thumbnails = sent.locator(".message-images img")
    expect(thumbnails).to_have_count(2, timeout=WAIT)
    # The sideways photo is upright: its thumbnail is portrait. The garden one is as it was.
    expect_loaded(thumbnails.nth(0), 300, 400)
    expect_loaded(thumbnails.nth(1), 320, 240)
    expect(thumbnails.nth(0)).to_have_attribute("alt", "biscuit-sideways.jpg", timeout=WAIT)
    expect(thumbnails.nth(1)).to_have_attribute("alt", "biscuit-garden.png", timeout=WAIT)
    chip = sent.locator(".message-files a.file-chip")
    expect(chip).to_have_count(1, timeout=WAIT)
    expect(chip.locator(".file-name")).to_have_text("vaccination-record.pdf", timeout=WAIT)
    expect(chip.locator(".file-type")).to_have_text("PDF", timeout=WAIT)
    expect(chip.locator(".file-size")).to_have_text(size_label(pdf_size), timeout=WAIT)
    expect(chip).to_have_attribute("href", FILE_URL, timeout=WAIT)

    # A fresh composer: no previews, no files, no text, no bar.
    expect(previews(page)).to_have_count(0, timeout=WAIT)
    expect(page.locator("#attachment-previews")).to_be_hidden(timeout=WAIT)
    assert page.locator("#message-files").evaluate("input => input.files.length") == 0
    expect(page.locator("#message-text")).to_have_value("", timeout=WAIT)
    assert_not_reloaded(page)
    sent.scroll_into_view_if_needed()
    page.screenshot(path=screenshot_dir / "attachments-sent.png", full_page=True)


def test_thumbnail_opens_full_view_with_next_and_back(
    log_in, household, admin, photo_message, screenshot_dir
):
    page = log_in(admin, **DESKTOP)
    page.goto(profile_url(household))
    article = page.locator(f"#message-{photo_message.id}")
    links = article.locator(".message-images a.thumb-link")
    expect(links).to_have_count(2, timeout=WAIT)
    first, second = (links.nth(index).get_attribute("href") for index in range(2))
    assert re.fullmatch(r"/files/[A-Za-z0-9_-]+/view", first), first

    links.nth(0).locator("img").scroll_into_view_if_needed()
    links.nth(0).click()
    expect(page).to_have_url(re.compile(rf"{re.escape(first)}$"), timeout=WAIT)
    photo = page.locator("img.photo-full")
    # Upright at full size: the 400x300 sideways source is a 300x400 portrait, red on top.
    expect_loaded(photo, 300, 400)
    colours = image_colours(photo)
    assert near(colours["top"], RED) and near(colours["bottom"], BLUE), colours
    expect(photo).to_have_attribute("alt", "biscuit-sideways.jpg", timeout=WAIT)
    bar = page.locator(".photo-view-bar")
    expect(bar).to_contain_text("1 of 2", timeout=WAIT)
    expect(page.get_by_role("link", name="← Previous")).to_have_count(0, timeout=WAIT)
    page.screenshot(path=screenshot_dir / "attachments-full-view.png", full_page=True)

    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(second)}$"), timeout=WAIT)
    expect_loaded(photo, 320, 240)
    expect(photo).to_have_attribute("alt", "biscuit-garden.png", timeout=WAIT)
    expect(bar).to_contain_text("2 of 2", timeout=WAIT)
    expect(page.get_by_role("link", name="Next →")).to_have_count(0, timeout=WAIT)
    expect(page.get_by_role("link", name="← Previous")).to_have_attribute(
        "href", first, timeout=WAIT
    )

    page.get_by_role("link", name="Back to messages").click()
    expect(page).to_have_url(
        re.compile(rf"/clients/{household.id}/feeds/conversation#message-{photo_message.id}$"),
        timeout=WAIT,
    )
    expect(article.locator(".message-text")).to_have_text("Photos from today's walk", timeout=WAIT)
    expect(article.locator(".message-images img")).to_have_count(2, timeout=WAIT)


def test_deleting_the_message_removes_its_files(
    undo_window_over, log_in, household, admin, photo_message
):
    page = log_in(admin, **DESKTOP)
    page.goto(profile_url(household))
    wait_for_htmx(page)
    mark_page(page)
    article = page.locator(f"#message-{photo_message.id}")
    expect(article.locator(".message-images img")).to_have_count(2, timeout=WAIT)
    urls = [
        *article.locator(".message-images img").evaluate_all(
            "images => images.map(img => img.getAttribute('src'))"
        ),
        *article.locator(".message-images a").evaluate_all(
            "links => links.map(link => link.getAttribute('href'))"
        ),
        article.locator("a.file-chip").get_attribute("href"),
    ]
    assert len(urls) == 5
    for url in urls:
        full = url.removesuffix("/thumbnail").removesuffix("/view")
        assert FILE_URL.match(full), url
        assert page.request.get(url).status == 200, url
    # The full-size bytes of each photo too, not only their thumbnails and view pages.
    photo_urls = [url.removesuffix("/view") for url in urls[2:4]]
    for url in photo_urls:
        assert page.request.get(url).status == 200, url

    article.get_by_role("link", name=re.compile(r"^Delete")).click()
    confirm = article.locator("form.confirm-delete")
    expect(confirm).to_contain_text("Delete this message?", timeout=WAIT)
    confirm.get_by_role("button", name="Delete", exact=True).click()
    expect(article.locator(".tombstone")).to_contain_text("Message deleted", timeout=WAIT)
    expect(article.locator(".message-images, .message-files, .message-text")).to_have_count(
        0, timeout=WAIT
    )
    assert_not_reloaded(page)
    for url in [*urls, *photo_urls]:
        assert page.request.get(url).status == 404, url


def test_drop_and_paste_add_previews_and_send(log_in, household, household_login):
    page = log_in(household_login, **DESKTOP)
    wait_for_htmx(page)
    mark_page(page)
    composer = page.locator("#feed form.composer")
    text = page.locator("#message-text")

    dropped = data_transfer(page, "dropped-garden.png", garden_png(), "image/png")
    # dispatchEvent answers false when a listener called preventDefault(): the page takes the
    # file instead of the browser opening it.
    assert dispatch(text, "dragover", dropped) is False
    expect(composer).to_have_class(re.compile(r"\bdragging\b"), timeout=WAIT)
    assert dispatch(text, "drop", dropped) is False
    expect(composer).not_to_have_class(re.compile(r"\bdragging\b"), timeout=WAIT)
    expect(previews(page)).to_have_count(1, timeout=WAIT)
    expect(previews(page).locator(".preview-name")).to_contain_text(
        ["dropped-garden.png"], timeout=WAIT
    )

    pasted = data_transfer(page, "image.png", garden_png(), "image/png")
    assert dispatch(text, "paste", pasted) is False
    expect(previews(page)).to_have_count(2, timeout=WAIT)
    expect(previews(page).locator(".preview-name")).to_contain_text(
        ["dropped-garden.png", "image.png"], timeout=WAIT
    )
    expect_preview_images_loaded(page, 2)
    # A pasted image adds no text to the message.
    expect(text).to_have_value("", timeout=WAIT)

    # Both reach the server: a message of photos only.
    send_button(page).click()
    sent = page.locator("#feed .messages article.message.own")
    thumbnails = sent.locator(".message-images img")
    expect(thumbnails).to_have_count(2, timeout=WAIT)
    expect_loaded(thumbnails.nth(0), 320, 240)
    expect_loaded(thumbnails.nth(1), 320, 240)
    expect(thumbnails.nth(0)).to_have_attribute("alt", "dropped-garden.png", timeout=WAIT)
    expect(thumbnails.nth(1)).to_have_attribute("alt", "image.png", timeout=WAIT)
    expect(sent.locator(".message-text")).to_have_count(0, timeout=WAIT)
    assert_not_reloaded(page)


def test_fake_photo_is_refused_by_the_server_at_the_composer(
    log_in, household, household_login, tmp_path
):
    fake = write(tmp_path, "fake.png", b"<!doctype html><html><script>alert(1)</script></html>")
    page = log_in(household_login, **DESKTOP)
    wait_for_htmx(page)
    mark_page(page)

    page.locator("#message-files").set_input_files(fake)
    expect(previews(page)).to_have_count(1, timeout=WAIT)
    page.locator("#message-text").fill("Here is the photo")
    send_button(page).click()

    error = page.locator("#feed form.composer .field-error")
    expect(error).to_have_count(1, timeout=WAIT)
    expect(error).to_contain_text("“fake.png” is not a photo we can show", timeout=WAIT)
    expect(error).to_be_visible(timeout=WAIT)
    # The writer keeps the text; nothing reached the feed.
    expect(page.locator("#message-text")).to_have_value("Here is the photo", timeout=WAIT)
    expect(page.locator("#feed .messages article.message")).to_have_count(0, timeout=WAIT)
    expect(page.get_by_text("No messages yet")).to_be_visible(timeout=WAIT)
    expect(page.locator("#upload-progress")).to_be_hidden(timeout=WAIT)
    # The chosen file stays chosen in the new composer, so the writer can remove it and resend.
    expect(previews(page)).to_have_count(1, timeout=WAIT)
    assert page.locator("#message-files").evaluate("input => input.files.length") == 1
    assert_not_reloaded(page)


def test_too_many_files_are_refused_before_sending(
    app, log_in, household, household_login, files
):
    app.config["UPLOAD_MAX_FILES"] = 2
    page = log_in(household_login, **DESKTOP)
    wait_for_htmx(page)
    mark_page(page)
    posts = record_refusals(page)

    page.locator("#message-files").set_input_files([files["jpeg"], files["png"], files["pdf"]])
    expect(previews(page)).to_have_count(3, timeout=WAIT)
    error = page.locator("#feed form.composer .field-error")
    expect(error).to_have_text("Attach at most 2 files to one message.", timeout=WAIT)
    page.locator("#message-text").fill("Three files")
    send_button(page).click()
    page.wait_for_function("() => window.__refused === 1", timeout=WAIT)
    assert posts == []
    expect(error).to_have_text("Attach at most 2 files to one message.", timeout=WAIT)
    expect(error).to_be_visible(timeout=WAIT)
    expect(page.locator("#feed .messages article.message")).to_have_count(0, timeout=WAIT)
    expect(previews(page)).to_have_count(3, timeout=WAIT)

    # Down to the limit, the error goes and the message goes out.
    page.get_by_role("button", name="Remove vaccination-record.pdf").click()
    expect(error).to_be_hidden(timeout=WAIT)
    send_button(page).click()
    sent = page.locator("#feed .messages article.message.own")
    expect(sent.locator(".message-images img")).to_have_count(2, timeout=WAIT)
    expect(sent.locator(".message-text")).to_have_text("Three files", timeout=WAIT)
    assert len(posts) == 1
    assert_not_reloaded(page)


def test_client_sends_a_photo_from_a_phone(
    log_in, household, household_login, files, screenshot_dir
):
    page = log_in(household_login, **PHONE)
    expect(page).to_have_url(re.compile(rf"/clients/{household.id}$"), timeout=WAIT)
    wait_for_htmx(page)
    mark_page(page)

    page.locator("#message-files").set_input_files(files["jpeg"])
    expect_preview_images_loaded(page, 1)
    overflow = horizontal_overflow(page)
    assert overflow <= 0, f"with a preview, the page scrolls sideways by {overflow}px"
    page.locator("#message-text").fill("Biscuit says hi from the sofa")
    send_button(page).click()

    sent = page.locator("#feed .messages article.message.own")
    expect(sent.locator(".message-text")).to_have_text(
        "Biscuit says hi from the sofa", timeout=WAIT
    )
    thumbnail = sent.locator(".message-images img")
    expect(thumbnail).to_have_count(1, timeout=WAIT)
    expect_loaded(thumbnail, 300, 400)
    expect(thumbnail).to_be_in_viewport(timeout=WAIT)
    assert_not_reloaded(page)
    page.screenshot(path=screenshot_dir / "attachments-phone.png", full_page=True)
    # Whether the feed now scrolls sideways: test_phone_feed_with_a_photo_fits_the_screen.


def test_phone_feed_with_a_photo_fits_the_screen(log_in, household, household_login, make_message):
    make_message(household, household_login, "One photo", files=[("garden.png", garden_png())])
    page = log_in(household_login, **PHONE)
    expect_loaded(page.locator("#feed .messages .message-images img"), 320, 240)
    overflow = horizontal_overflow(page)
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
