"""What serving photos no-store costs a feed: the second visit to a page of photo messages, its
thumbnails sent whole again (no-store, as now) against revalidated by ETag (no-cache, a 304
without the bytes, as before).

Run: .venv/bin/python -m bench.photo_feed [--photos 50] [--rounds 15] [--write bench/RESULTS.md]
In one process (Flask's test client, as bench/profile.py), on a temporary SQLite database: one
client whose latest page (50 messages) holds `--photos` messages with a photo each. A visit
fetches every thumbnail the page shows, as a browser asks for them; its time is CPU time in this
process, server and client together, the two ways of serving taking turns in every round. The
feed page itself, the same either way, is measured apart.
"""

import argparse
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from io import BytesIO
from unittest import mock

from flask import Flask, send_file
from PIL import Image, ImageFilter

from bench import dataset
from bench.profile import Visitor
from bench.report import publish
from portal import create_app
from portal.extensions import db
from portal.files import routes
from portal.storage import storage

THUMBNAIL = re.compile(r'src="(/files/[^"]+/thumbnail)"')


@dataclass(frozen=True)
class Visit:
    statuses: tuple[int, ...]
    wire_bytes: int  # status lines, headers and bodies, as the app writes them
    cpu_ms: float


def feed_photo() -> bytes:
    """A 1600x1200 JPEG whose 480 px thumbnail weighs what a phone photo's does (about 25 kB
    of WebP): noise with its detail at the thumbnail's scale, which WebP cannot smooth away."""
    noise = Image.effect_noise((400, 300), 64).filter(ImageFilter.GaussianBlur(1.2))
    image = Image.merge("RGB", (noise, noise.rotate(180), noise.transpose(Image.FLIP_LEFT_RIGHT)))
    output = BytesIO()
    image.resize((1600, 1200), Image.Resampling.BICUBIC).save(output, "JPEG", quality=90)
    return output.getvalue()


def build(folder: str, photos: int) -> tuple[Flask, str]:
    """The app on a new database: an admin, and a client with `photos` photo messages.
    Returns the app and the client's feed page."""
    from flask_migrate import upgrade

    from portal.models import Business, Feed, Role
    from portal.services import accounts, clients, messages
    from portal.services.uploads import Upload, prepare

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.sqlite3",
                      "SECRET_KEY": "bench-only", "UPLOAD_FOLDER": f"{folder}/uploads"})
    photo = prepare(Upload("IMG_0001.JPG", feed_photo()), max_bytes=25 << 20,
                    max_pixels=50_000_000)
    with app.app_context():
        upgrade()
        business = Business(name="Bench Pet Care", time_zone="America/Chicago")
        db.session.add(business)
        db.session.commit()
        admin = accounts.create_user(business, role=Role.ADMIN, email=dataset.ADMIN_EMAIL,
                                     name="Ada Admin", password=dataset.PASSWORD)
        client = clients.create_client(business, None, name="Dana Bench", pets=[("Rex", "Dog")])
        for n in range(photos):
            messages.post_message(admin, client, Feed.CONVERSATION, f"Walk {n}", [photo])
        page = f"/clients/{client.id}/feeds/conversation"
        db.session.remove()
    return app, page


def revalidated_send(key: str, mimetype: str, name: str, *, as_attachment: bool = False):
    """Files as they were served before no-store: kept by the browser and revalidated on every
    use (no-cache), by an ETag from the file's path, size and time."""
    response = send_file(
        storage()._file(key), mimetype=mimetype, as_attachment=as_attachment,
        download_name=name, conditional=True, etag=True, max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers.update(routes.FILE_HEADERS)
    return response


class Browser:
    """A logged-in person (bench/profile.py's Visitor) with a cache for revalidated files."""

    def __init__(self, app: Flask, page: str):
        self.client = Visitor(app, dataset.ADMIN_EMAIL).client
        self.page = page
        self.etags: dict[str, str] = {}

    def thumbnails(self) -> list[str]:
        return THUMBNAIL.findall(self.client.get(self.page).text)

    def fetch(self, urls: list[str]) -> Visit:
        started = time.process_time()
        # Buffered: the bytes are read (and the file closed) inside the time, as a server would.
        responses = [self.client.get(url, headers=self._validators(url), buffered=True)
                     for url in urls]
        spent = (time.process_time() - started) * 1000
        for url, response in zip(urls, responses, strict=True):
            if "ETag" in response.headers:
                self.etags[url] = response.headers["ETag"]
        return Visit(tuple(response.status_code for response in responses),
                     sum(_wire_bytes(response) for response in responses), spent)

    def _validators(self, url: str) -> dict[str, str]:
        return {"If-None-Match": self.etags[url]} if url in self.etags else {}


def _wire_bytes(response) -> int:
    status_line = len(f"HTTP/1.1 {response.status}\r\n")
    headers = sum(len(name) + len(value) + 4 for name, value in response.headers.items())
    return status_line + headers + 2 + len(response.get_data())


def second_visits(app: Flask, page: str, rounds: int) -> tuple[list[Visit], list[Visit], int]:
    """(no-store visits, revalidated visits, the feed page's bytes): each round one of each,
    after a first visit that filled the revalidating browser's cache."""
    now, before = Browser(app, page), Browser(app, page)
    urls = now.thumbnails()
    with mock.patch.object(routes, "_send", revalidated_send):
        before.fetch(urls)  # the first visit: every thumbnail whole, its ETag kept
    stored, revalidated = [], []
    for _ in range(rounds):
        stored.append(now.fetch(urls))
        with mock.patch.object(routes, "_send", revalidated_send):
            revalidated.append(before.fetch(urls))
    return stored, revalidated, _wire_bytes(now.client.get(page))


def page_cpu_ms(app: Flask, page: str, rounds: int) -> float:
    client = Browser(app, page).client
    spent = []
    for _ in range(rounds):
        started = time.process_time()
        client.get(page)
        spent.append((time.process_time() - started) * 1000)
    return statistics.median(spent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, default=50, help="photo messages on the page")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write", help="append the table to this markdown file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        app, page = build(folder, args.photos)
        stored, revalidated, page_bytes = second_visits(app, page, args.rounds)
        page_ms = page_cpu_ms(app, page, args.rounds)
        lines = report(stored, revalidated, page_bytes, page_ms, args)
        with app.app_context():
            db.engine.dispose()  # no connection outlives the temporary database
    publish(lines, args.write)


def report(stored: list[Visit], revalidated: list[Visit], page_bytes: int, page_ms: float,
           args) -> list[str]:
    now, before = stored[0], revalidated[0]
    now_ms = statistics.median(visit.cpu_ms for visit in stored)
    before_ms = statistics.median(visit.cpu_ms for visit in revalidated)
    extra = now.wire_bytes - before.wire_bytes
    thumbnail_kb = (now.wire_bytes / len(now.statuses)) / 1000
    return [
        "## What no-store costs a feed of photos",
        "",
        f"A second visit to a feed page of {args.photos} messages with a photo each: the page, "
        f"then its {len(now.statuses)} thumbnails (about {thumbnail_kb:.0f} kB each, 480 px "
        f"WebP). In one process (Flask's test client); CPU time of server and client, median "
        f"of {args.rounds} rounds taking turns; bytes as the app writes them (status line, "
        "headers, body).",
        "",
        "| thumbnails served | answers | bytes per visit | CPU per visit |",
        "|---|---|---|---|",
        f"| `no-store` (now): sent whole every time | {_answers(now)} | "
        f"{now.wire_bytes / 1e6:.2f} MB | {now_ms:.1f} ms |",
        f"| `private, no-cache` + ETag (before): revalidated | {_answers(before)} | "
        f"{before.wire_bytes / 1e3:.1f} kB | {before_ms:.1f} ms |",
        f"| the feed page itself, either way | one 200 | {page_bytes / 1e3:.1f} kB | "
        f"{page_ms:.1f} ms |",
        "",
        f"- no-store costs a visit {extra / 1e6:.2f} MB more; its CPU is "
        f"{abs(now_ms - before_ms):.1f} ms {'more' if now_ms > before_ms else 'less'} "
        f"({now_ms / before_ms:.2f}x the revalidation's: reading a small file costs about what "
        "the ETag and the conditional check did). No request more: no-cache already asked for "
        "every thumbnail on every visit; only the bytes come back now.",
        f"- On the wire the {extra / 1e6:.2f} MB take about {_seconds(extra, 10):.1f} s at "
        f"10 Mbit/s (a weak mobile link), {_seconds(extra, 50):.2f} s at 50 Mbit/s "
        f"(computed from the bytes, not measured).",
        "- An upper bound: thumbnails load lazily, so a browser fetches only those near the "
        "screen. A thumbnail shown again within the open page is not fetched again either way "
        "(the page's own image memory, not the disk cache that no-store forbids).",
        "",
    ]


def _answers(visit: Visit) -> str:
    counts = {status: visit.statuses.count(status) for status in sorted(set(visit.statuses))}
    return ", ".join(f"{count} x {status}" for status, count in counts.items())


def _seconds(size: int, megabits_per_second: int) -> float:
    return size * 8 / (megabits_per_second * 1e6)


if __name__ == "__main__":
    main()
