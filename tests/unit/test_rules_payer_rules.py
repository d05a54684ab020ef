"""Payer rule files: shipped data, lookup by DOS, payer-name matching, strict validation."""
from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pytest
import yaml

from portal.rules.payer_rules import (
    PAYERS_DIR,
    NoRulesInForceError,
    RuleFileError,
    UnknownPayerError,
    load_all,
    load_payer_file,
    note_signing_deadline,
)

SUNRISE = PAYERS_DIR / "sunrise_medicaid_mco.yaml"


@pytest.fixture(scope="module")
def book():
    return load_all()


def test_shipped_payers(book):
    got = {k: (p.name, p.kind) for k, p in book.payers.items()}
    assert got == {
        "sunrise_medicaid_mco": ("Sunrise Medicaid MCO", "medicaid"),
        "blueriver_ppo": ("BlueRiver PPO", "commercial"),
        "keystone_commercial_hmo": ("Keystone Commercial HMO", "commercial"),
        "self_pay": ("Self-pay", "self_pay"),
    }
    sunrise = book.rules_for("sunrise_medicaid_mco", date(2026, 11, 2))
    assert sunrise.h0015.min_daily_minutes == 180
    assert sunrise.weekly.adult_floor_minutes == 540
    assert sunrise.weekly.adolescent_floor_minutes == 360
    assert sunrise.weekly.cap_minutes == 1140
    assert sunrise.weekly.min_service_days == 3
    assert sunrise.h2019.rounding == "cpt_midpoint"
    assert sunrise.group_size_limit == 12


@pytest.mark.parametrize("name, key", [
    ("Sunrise Medicaid MCO", "sunrise_medicaid_mco"),
    ("sunrise medicaid mco", "sunrise_medicaid_mco"),
    ("  SUNRISE   medicaid MCO ", "sunrise_medicaid_mco"),
    ("Self-pay", "self_pay"),
    ("self pay", "self_pay"),
    ("BlueRiver PPO", "blueriver_ppo"),
    ("Keystone Commercial HMO", "keystone_commercial_hmo"),
    ("keystone_commercial_hmo", "keystone_commercial_hmo"),
    ("Unknown Payer Inc", None),
    ("", None),
    (None, None),
])
def test_match_payer(book, name, key):
    assert book.match_payer(name) == key


@pytest.mark.parametrize("dos, hq", [
    (date(2026, 11, 13), None),
    (date(2026, 11, 15), None),
    (date(2026, 11, 16), "HQ"),
    (date(2026, 12, 31), "HQ"),
])
def test_version_in_force_on_dos(book, dos, hq):
    assert book.rules_for("sunrise_medicaid_mco", dos).group_modifier == hq


def test_dos_before_first_version_is_an_error(book):
    with pytest.raises(NoRulesInForceError, match="sunrise_medicaid_mco: no rules in force on 2025-12-31"):
        book.rules_for("sunrise_medicaid_mco", date(2025, 12, 31))


def test_unknown_payer_key_is_an_error(book):
    with pytest.raises(UnknownPayerError):
        book.rules_for("nope", date(2026, 11, 2))


def _write(tmp_path: Path, data, name="sunrise_medicaid_mco.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _sunrise():
    return yaml.safe_load(SUNRISE.read_text())


def _set(d, dotted, value):
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d[int(p)] if isinstance(d, list) else d[p]
    if value is _DELETE:
        del d[parts[-1]]
    else:
        d[parts[-1]] = value


_DELETE = object()


@pytest.mark.parametrize("key, value, message", [
    ("versions.1.h0015.min_daily_minutes", "abc",
     "versions[1].h0015.min_daily_minutes: expected integer >= 0, got 'abc'"),
    ("versions.0.h0015.rate_cents", 165.0,
     "versions[0].h0015.rate_cents: expected integer >= 0, got 165.0"),
    ("versions.0.h0015.rate_cents", True,
     "versions[0].h0015.rate_cents: expected integer >= 0, got True"),
    ("versions.0.h2019.rounding", "nearest",
     "versions[0].h2019.rounding: expected one of ['cpt_midpoint', 'whole_units'], got 'nearest'"),
    ("versions.0.group_modifier", "hq", "versions[0].group_modifier: expected a value matching"),
    ("versions.0.in_person_pos", "5", "versions[0].in_person_pos: expected a value matching"),
    ("versions.0.bill_codes", ["H9999"], "versions[0].bill_codes[0]: expected one of ['H0015', 'H2019', 'H0004', 'H0005']"),
    ("versions.0.telehealth.video_allowed", "yes",
     "versions[0].telehealth.video_allowed: expected true or false, got 'yes'"),
    ("versions.0.weekly.floor", 10, "versions[0].weekly.floor: unknown key"),
    ("versions.0.effective_from", "2026-13-01",
     "versions[0].effective_from: expected a date (YYYY-MM-DD), got '2026-13-01'"),
    ("versions.1.effective_from", "2025-06-01", "versions[1].effective_from: expected a date after 2026-01-01"),
    ("versions.0.h0015", _DELETE, "versions[0].bill_codes[0]: code needs a 'h0015' section"),
    ("kind", "hmo", "kind: expected one of"),
    ("key", "other", "key: expected the file name stem 'sunrise_medicaid_mco'"),
    ("name", _DELETE, "name: required key is missing"),
    ("versions", [], "versions: expected a non-empty list"),
])
def test_bad_rule_file_names_file_and_key(tmp_path, key, value, message):
    data = _sunrise()
    _set(data, key, value if value is _DELETE else copy.deepcopy(value))
    path = _write(tmp_path, data)
    with pytest.raises(RuleFileError) as exc:
        load_payer_file(path)
    text = str(exc.value)
    assert text.startswith(f"{path}: "), text
    assert message in text, text


def test_invalid_yaml_syntax_names_file(tmp_path):
    path = _write(tmp_path, "key: [unclosed\n")
    with pytest.raises(RuleFileError, match=r"sunrise_medicaid_mco.yaml: not valid YAML"):
        load_payer_file(path)


def test_shipped_file_errors_use_repo_relative_path(tmp_path, monkeypatch):
    # the message for a file inside the repo names it as portal/rules/payers/<file>
    from portal.rules import payer_rules
    assert payer_rules._display_path(SUNRISE) == "portal/rules/payers/sunrise_medicaid_mco.yaml"


def test_alias_claimed_by_two_payers(tmp_path):
    a = _sunrise()
    b = _sunrise()
    b["key"], b["name"], b["aliases"] = "other_mco", "Other MCO", ["Sunrise MCO"]
    _write(tmp_path, a)
    _write(tmp_path, b, "other_mco.yaml")
    with pytest.raises(RuleFileError, match="aliases: 'Sunrise MCO' also names payer"):
        load_all(tmp_path)


@pytest.mark.parametrize("payer, dos, due", [
    ("sunrise_medicaid_mco", date(2026, 11, 5), date(2026, 11, 10)),   # Thu + 3 business days
    ("sunrise_medicaid_mco", date(2026, 11, 6), date(2026, 11, 11)),   # Fri -> Wed
    ("blueriver_ppo", date(2026, 11, 5), date(2026, 11, 19)),          # 14 calendar days
])
def test_note_signing_deadline(book, payer, dos, due):
    assert note_signing_deadline(dos, book.rules_for(payer, dos)) == due
