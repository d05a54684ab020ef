"""Sign-in limits: per account and per address, failures only, Retry-After, storage from
RATELIMIT_STORAGE_URI (shared between gunicorn workers: tests/web/test_server.py), and no timing difference between known and
unknown emails."""
from __future__ import annotations

import time


from portal.extensions import limiter
from tests import factories


def _enable(app, account="3 per minute", address="100 per minute"):
    app.config.update(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT=account,
                      LOGIN_ADDRESS_RATE_LIMIT=address)
    limiter.init_app(app)  # re-read the switch and storage for this app
    limiter.reset()


def _post(client, email, password, addr="10.0.0.1", path="/login"):
    token = factories.csrf_from(client.get("/login", environ_base={"REMOTE_ADDR": addr})
                                .get_data(as_text=True))
    return client.post(path, data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": addr})


def test_failures_per_account_are_limited_with_retry_after(app, client, world):
    _enable(app)
    codes = [_post(client, world.billing.email, "guess").status_code for _ in range(3)]
    assert codes == [422, 422, 422]
    blocked = _post(client, world.billing.email, factories.PASSWORD)
    assert blocked.status_code == 429  # even the right password waits: the account is under attack
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in blocked.get_data(as_text=True)
    # Another account from the same clinic address is not locked out.
    assert _post(client, world.admin.email, factories.PASSWORD).status_code == 302


def test_the_account_limit_holds_across_addresses(app, client, world):
    _enable(app)
    for i in range(3):
        assert _post(client, world.billing.email, "guess", addr=f"10.0.1.{i}").status_code == 422
    assert _post(client, world.billing.email, "guess", addr="10.0.9.9").status_code == 429


def test_successful_sign_ins_are_not_counted(app, client, world):
    _enable(app, account="2 per minute")
    for _ in range(5):
        assert _post(client, world.billing.email, factories.PASSWORD).status_code == 302
        client.get("/login?switch=1")


def test_failures_per_address_are_limited_across_accounts(app, client, world):
    _enable(app, account="100 per minute", address="4 per minute")
    emails = [f"nobody{i}@lakeshore.test" for i in range(4)]
    assert [_post(client, e, "guess").status_code for e in emails] == [422] * 4
    resp = _post(client, "nobody9@lakeshore.test", "guess")
    assert resp.status_code == 429 and "Retry-After" in resp.headers
    # A different address (another clinic) is not affected.
    assert _post(client, world.billing.email, factories.PASSWORD, addr="10.0.0.2").status_code == 302


def test_the_lock_screen_shares_the_account_limit(app, client, login, world):
    _enable(app)
    login.as_(world.facilitator)
    token = factories.csrf_from(client.get("/today").get_data(as_text=True))
    with client.session_transaction() as s:
        s["seen_at"] = int(time.time()) - 3600
    codes = [client.post("/unlock", data={"email": world.facilitator.email, "password": "x",
                                          "csrf_token": token},
                         headers={"HX-Request": "true"}).status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]


def test_storage_comes_from_the_environment(monkeypatch, tmp_path):
    from portal import create_app
    from tests.conftest import _config

    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://?from-env")
    cfg = _config(tmp_path, "sqlite://")
    cfg.pop("RATELIMIT_ENABLED")
    app = create_app(cfg)
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://?from-env"


def test_unknown_emails_cost_one_argon2_run_like_known_ones(app, world, monkeypatch):
    from portal.services import auth as svc

    calls = []
    real = svc.check_password
    monkeypatch.setattr(svc, "check_password", lambda h, p: calls.append(h) or real(h, p))
    assert svc.authenticate("nobody@nowhere.test", "guess") is None
    assert svc.authenticate(world.billing.email, "guess") is None
    world.billing.is_active_user = False
    assert svc.authenticate(world.billing.email, factories.PASSWORD) is None
    assert len(calls) == 3 and all(h.startswith("$argon2id$") for h in calls)


def test_sign_in_timing_does_not_reveal_which_emails_exist(app, client, world):
    from portal.services.auth import authenticate

    authenticate("warm@up.test", "x")  # the dummy hash is made once

    def median(email):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            authenticate(email, "wrong password")
            times.append(time.perf_counter() - t0)
        return sorted(times)[2]

    known, unknown = median(world.billing.email), median("nobody@nowhere.test")
    assert 0.5 < unknown / known < 2, (known, unknown)
