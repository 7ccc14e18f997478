"""Clients > Import in a real Chromium: the admin downloads a template, uploads a file with a bad
row, sees the error, uploads the corrected file, imports it and finds the clients."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def choose_file(page, name: str, text: str) -> None:
    page.get_by_label("CSV file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8")})


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=VIEWPORTS)
def test_admin_imports_clients_after_fixing_a_bad_row(log_in, admin, screenshot_dir, viewport):
    page = log_in(admin, viewport=VIEWPORTS[viewport])
    page.goto("/clients")
    page.get_by_role("link", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import clients, pets and services")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the clients template").click()
    template = download.value.path().read_bytes().decode("utf-8-sig")
    header, example = template.splitlines()
    assert header.startswith("external_id,name,first_name,last_name,email")
    page.screenshot(path=screenshot_dir / f"import-upload-{viewport}.png", full_page=True)

    columns = header.split(",")
    blank = dict.fromkeys(columns, "")

    def row(**values) -> str:
        return ",".join({**blank, **values}[column] for column in columns)

    good = row(external_id="C-1", name="Lopez household", email="ana@example.com")
    bad = row(external_id="C-2", name="Chen household", email="chen-at-example.com")
    page.get_by_role("radio", name="Clients").check()
    choose_file(page, "clients.csv", "\r\n".join([header, example, good, bad]) + "\r\n")
    page.get_by_role("button", name="Preview the import").click()
    expect(page.get_by_role("heading", name=re.compile("Preview: clients.csv"))).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("1 row has errors")
    expect(page.get_by_text("chen-at-example.com is not an email address.")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Import"))).to_have_count(0)
    page.screenshot(path=screenshot_dir / f"import-preview-error-{viewport}.png", full_page=True)

    page.get_by_role("link", name="Upload a corrected file").click()
    fixed = bad.replace("chen-at-example.com", "chen@example.com")
    choose_file(page, "clients-fixed.csv", "\r\n".join([header, example, good, fixed]) + "\r\n")
    page.get_by_role("button", name="Preview the import").click()
    heading = page.get_by_role("heading", name=re.compile("Preview: clients-fixed.csv"))
    expect(heading).to_be_visible()
    page.get_by_role("link", name=re.compile(r"^New \(3\)")).click()
    expect(page.get_by_role("cell", name="Chen household")).to_be_visible()
    page.screenshot(path=screenshot_dir / f"import-preview-ready-{viewport}.png", full_page=True)
    page.get_by_role("button", name="Import 3 clients").click()

    expect(page).to_have_url(re.compile(r"/clients$"))
    expect(page.get_by_text("Imported clients-fixed.csv: 3 new clients, 0 updated, "
                            "0 unchanged.")).to_be_visible()
    for name in ("Rivera household", "Lopez household", "Chen household"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    page.screenshot(path=screenshot_dir / f"import-done-{viewport}.png", full_page=True)
