"""The census upload page: admin and billing only; preview (dry run), then commit by token."""
from __future__ import annotations

import html
import io
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from tests import factories
from tests.unit.test_census_parse import FIXTURE
from tests.web.test_census_cli import clean_fixture, counts

URL = "/admin/census/"


def page_token(client) -> str:
    resp = client.get(URL)
    assert resp.status_code == 200
    return factories.csrf_from(resp.get_data(as_text=True))


def upload(client, data: bytes, filename: str = "census.csv", **kw):
    token = page_token(client)
    # Pre-encoded: the test client spools a large generated body to a temp file it never closes.
    boundary, body = encode_multipart(MultiDict({
        "csrf_token": token, "file": FileStorage(io.BytesIO(data), filename)}))
    return client.post(URL, data=body, content_type=f"multipart/form-data; boundary={boundary}", **kw)


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


@pytest.mark.parametrize("role, status", [
    ("admin", 200), ("billing", 200), ("facilitator", 403), ("clinician", 403), ("auditor", 403),
])
def test_who_may_open_the_upload_page(world, client, login, role, status):
    login.as_(world.users[role])
    resp = client.get(URL)
    assert resp.status_code == status
    if status == 200:
        body = text(resp)
        assert '<label for="census-file">' in body
        assert "No file previewed yet." in body


@pytest.mark.parametrize("role", ["facilitator", "clinician", "auditor"])
def test_others_cannot_post_an_upload_or_commit(world, client, login, role):
    login.as_(world.users[role])
    headers = {"X-CSRFToken": factories.csrf_from(client.get("/", follow_redirects=True).get_data(as_text=True))}
    before = counts()
    assert client.post(URL, data={"file": (io.BytesIO(clean_fixture()), "c.csv")},
                       content_type="multipart/form-data", headers=headers).status_code == 403
    assert client.post(URL + "commit", data={"token": "0" * 64}, headers=headers).status_code == 403
    assert counts() == before


def test_signed_out_users_are_sent_to_sign_in(client):
    resp = client.get(URL)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_upload_with_errors_is_422_names_every_row_and_writes_nothing(world, client, login):
    login.as_(world.admin)
    before = counts()
    resp = upload(client, FIXTURE.read_bytes())
    assert resp.status_code == 422
    body = text(resp)
    assert 'role="alert"' in body and "Nothing was written." in body
    assert "<td>23</td><td>DOB</td><td>bad date \"13/02/1990\": month 13 (expected M/D/YYYY)</td>" in body
    assert "<td>24</td><td>MRN</td><td>MRN 100232 duplicates line 3 with conflicting data" in body
    assert "<td>25</td><td>Primary Payer</td><td>unknown payer \"Unknown Payer Inc\": no payer has" in body
    assert 'name="token"' not in body
    assert counts() == before


def test_preview_then_commit_writes_the_stored_file(world, client, login, app):
    login.as_(world.billing)
    before = counts()
    resp = upload(client, clean_fixture())
    assert resp.status_code == 200, text(resp)
    body = text(resp)
    assert "15 new · 0 unchanged · 6 updated" in body          # patients
    assert '<th scope="row">100233</th>' in body and "García-López, José" in body
    assert "Commit import" in body
    assert counts() == before                                   # a preview writes nothing
    token = factories.csrf_from(body)
    commit_token = body.split('name="token" value="')[1].split('"')[0]
    stored = Path(app.instance_path) / "census_uploads" / f"{commit_token}.csv"
    assert stored.read_bytes() == clean_fixture()

    resp = client.post(URL + "commit", data={"csrf_token": token, "token": commit_token})
    assert resp.status_code == 200, text(resp)
    assert "Import written" in text(resp)
    assert counts() == (before[0] + 15, before[1] + 15, 15)
    assert not stored.exists()
    # The same token cannot be replayed.
    again = client.post(URL + "commit", data={"csrf_token": token, "token": commit_token})
    assert again.status_code == 409


def test_reupload_after_import_has_nothing_to_commit(world, client, login):
    login.as_(world.admin)
    token = page_token(client)
    body = text(upload(client, clean_fixture()))
    commit_token = body.split('name="token" value="')[1].split('"')[0]
    client.post(URL + "commit", data={"csrf_token": token, "token": commit_token})
    resp = upload(client, clean_fixture())
    assert resp.status_code == 200
    body = text(resp)
    assert "0 new · 21 unchanged · 0 updated" in body
    assert "already in the portal" in body and 'name="token"' not in body


def test_commit_refuses_a_token_not_previewed_in_this_session(world, client, login):
    login.as_(world.admin)
    token = page_token(client)
    before = counts()
    for forged in ("0" * 64, "../../etc/passwd", ""):
        resp = client.post(URL + "commit", data={"csrf_token": token, "token": forged})
        assert resp.status_code in (400, 409)
    assert counts() == before


def test_commit_rechecks_the_stored_bytes(world, client, login, app):
    login.as_(world.admin)
    body = text(upload(client, clean_fixture()))
    commit_token = body.split('name="token" value="')[1].split('"')[0]
    stored = Path(app.instance_path) / "census_uploads" / f"{commit_token}.csv"
    stored.write_bytes(FIXTURE.read_bytes())  # swapped on disk after the preview
    before = counts()
    resp = client.post(URL + "commit", data={"csrf_token": factories.csrf_from(body), "token": commit_token})
    assert resp.status_code == 409
    assert counts() == before


@pytest.mark.parametrize("data, filename, message", [
    (b"MRN,Last Name\r\n", "census.xlsx", "Only a .csv file can be imported"),
    (b"x" * (2 * 1024 * 1024 + 1), "census.csv", "The file is larger than 2 MB"),
])
def test_bad_uploads_get_a_clear_message(world, client, login, data, filename, message):
    login.as_(world.admin)
    before = counts()
    resp = upload(client, data, filename)
    assert resp.status_code == 422
    body = text(resp)
    assert message in body and 'role="alert"' in body
    assert counts() == before


def test_missing_file_is_422(world, client, login):
    login.as_(world.admin)
    resp = client.post(URL, data={"csrf_token": page_token(client)}, content_type="multipart/form-data")
    assert resp.status_code == 422
    assert "Choose the census export file to upload." in text(resp)


def test_non_utf8_upload_names_the_byte_and_writes_nothing(world, client, login):
    login.as_(world.admin)
    before = counts()
    data = clean_fixture().replace("García".encode(), "García".encode("cp1252"))
    resp = upload(client, data)
    assert resp.status_code == 422
    assert "<td>4</td><td>Last Name</td><td>byte 0xED at byte offset" in text(resp)
    assert counts() == before


def test_binary_file_named_csv_is_one_error_not_one_per_byte(world, client, login):
    login.as_(world.admin)
    before = counts()
    data = bytes(range(128, 256)) * 40 + b"PK\x03\x04" * 100  # 5120 bad bytes, none decodable
    resp = upload(client, data, filename="census.csv")
    assert resp.status_code == 422
    body = text(resp)
    assert body.count("is not UTF-8") == 1
    assert ("<td>1</td><td>column 1</td><td>byte 0x80 at byte offset 0 is not UTF-8 "
            "(nor are 5119 more bytes after it); export the census as CSV UTF-8</td>") in body
    assert counts() == before


def test_latin1_name_in_reordered_columns_is_named_by_its_own_column(world, client, login):
    login.as_(world.admin)
    lines = clean_fixture().split(b"\r\n")
    # swap the first two columns of every line: the file says "Last Name,MRN,..."
    swapped = b"\r\n".join(b",".join([c[1], c[0], *c[2:]]) if len(c := ln.split(b",")) > 1 else ln
                            for ln in lines)
    data = swapped.replace("García".encode(), "García".encode("cp1252"))
    resp = upload(client, data)
    assert resp.status_code == 422
    assert "<td>4</td><td>Last Name</td><td>byte 0xED at byte offset" in text(resp)


def test_htmx_upload_gets_only_the_preview_partial(world, client, login):
    login.as_(world.admin)
    resp = upload(client, FIXTURE.read_bytes(), headers={"HX-Request": "true"})
    assert resp.status_code == 422
    body = text(resp)
    assert "<html" not in body and "<td>23</td>" in body
    assert "HX-Request" in resp.headers.get("Vary", "")


def test_header_only_file_shows_the_empty_state(world, client, login):
    login.as_(world.admin)
    resp = upload(client, FIXTURE.read_bytes().splitlines(keepends=True)[0])
    assert resp.status_code == 200
    assert "The file has a header but no patient rows." in text(resp)


def test_an_mrn_on_file_under_another_name_and_dob_is_refused_not_updated(world, client, login):
    """QA: a row with an existing MRN but another person's name and date of birth previewed as a
    plain "updated". Both differing is another person (or a mistyped MRN): refused, named,
    nothing written. One of them differing is a correction and previews as an update."""
    from tests.unit.test_census_parse import csv_bytes

    login.as_(world.admin)
    base = {"Auth #": "", "Auth Start": "", "Auth End": "", "Auth Units": "", "Prior Auth #": "",
            "Prior Level of Care": ""}
    before = counts()
    resp = upload(client, csv_bytes({**base, "Last Name": "Different", "First Name": "Person",
                                     "DOB": "1/1/1990"}))
    assert resp.status_code == 422
    body = text(resp)
    assert "MRN 100231 is Alvarez, Marisol (DOB 03/14/1988) in the portal" in body
    assert "names Different, Person (DOB 01/01/1990)" in body and "Nothing was written." in body
    assert "1 new" not in body and "Different, Person</td>" not in body  # not previewed as new
    assert counts() == before

    resp = upload(client, csv_bytes({**base, "Last Name": "Alvarez-Reyes"}))  # a married name
    assert resp.status_code == 200, text(resp)
    assert "Last Name: Alvarez -> Alvarez-Reyes" in text(resp)
