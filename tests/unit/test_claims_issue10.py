"""Table-driven tests for the 837P and payer-rule defects of issue 10, each a test that would
have caught the defect first. Every 837P built here passes pyx12 and our situational checks."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from portal.rules.claim_lines import derive_claim_lines, weekly_summary
from portal.rules.x12_837p import ControlNumbers, build_837p
from portal.rules.x12_999 import claim_errors, parse_999
from portal.rules.x12_fields import dmg_sex
from tests.unit.test_rules_claim_lines import (MON, PROGRAM, RB, auth, at, codes, derive, one,
                                              patient, row, session)
from tests.unit.test_rules_x12_837p import NOW, RCV, SUB
from tests.x12_check import assert_valid_837p, pyx12_result

X12_PROGRAM = replace(PROGRAM, tax_id="361234567", address_line="410 N Harbor Dr", city="Chicago",
                      state="IL", postal_code="606011234")


def build(lines, patients, payer="sunrise_medicaid_mco", **kw):
    return build_837p([ln for ln in lines if ln.status == "ready"], patients, X12_PROGRAM,
                      RB.payer(payer), SUB, RCV, ControlNumbers(5, 5, 5), NOW, **kw)


# --- X12 character set: a value that can't be sent is a reason naming the field ------------

@pytest.mark.parametrize("field, value, label", [
    ("member_id", "SMC*441", "member ID"),
    ("member_id", "SMC~441", "member ID"),
    ("member_id", "SMC:441", "member ID"),
    ("member_id", "SMC^441", "member ID"),
    ("last_name", "O*Brien", "last name"),
    ("first_name", "Ana~", "first name"),
    ("address_line", "12 Elm St ~ Apt 4", "address"),
    ("city", "Chi^cago", "city"),
    ("postal_code", "60614~", "ZIP"),
    ("diagnoses", ("F10.20*",), "diagnosis 1"),
    ("member_id", "SMC\u2603441", "member ID"),  # a snowman: outside the character set
])
def test_unsendable_values_block_the_line_naming_the_field(field, value, label):
    ln = one(derive([session()], [row()], [patient(**{field: value})]))
    assert ln.status == "blocked"
    [r] = [r for r in ln.reasons if r.code == "x12_invalid_value"]
    assert r.message.startswith(label) and r.who_must_act == "billing"


def test_authorization_with_separators_blocks_and_never_reaches_a_file():
    lines = derive([session()], [row()], auths=[auth(number="KC*455~30")])
    ln = one(lines)
    assert "x12_invalid_value" in codes(ln, "block")
    assert "authorization number" in next(r.message for r in ln.reasons if r.code == "x12_invalid_value")
    assert ln.status == "blocked"
    # the builder refuses such a value too, rather than splitting the segment
    with pytest.raises(ValueError, match="authorization number"):
        build([replace(ln, status="ready", reasons=())], [patient()])


def test_accented_names_are_transliterated_not_blocked():
    p = patient(last_name="García-López", first_name="José", city="Peñasco")
    ln = one(derive([session()], [row()], [p]))
    assert ln.status == "ready"
    text = build([ln], [p])
    assert "NM1*IL*1*GARCIA-LOPEZ*JOSE" in text and "N4*PENASCO*IL*60614" in text
    assert_valid_837p(text)


@pytest.mark.parametrize("sex, code", [("F", "F"), ("female", "F"), ("M", "M"), ("Male", "M"),
                                       ("Nonbinary", "U"), ("N", "U"), ("X", "U"), (None, "U"),
                                       ("", "U"), ("Unknown", "U")])
def test_dmg03_is_f_m_or_u(sex, code):
    assert dmg_sex(sex) == code
    p = patient(sex=sex, dob=date(1990, 1, 2))
    text = build(derive([session()], [row()], [p]), [p])
    assert f"DMG*D8*19900102*{code}~" in text
    assert_valid_837p(text)


@pytest.mark.parametrize("missing", ["address_line", "city", "state", "postal_code"])
def test_subscriber_address_missing_blocks(missing):
    ln = one(derive([session()], [row()], [patient(**{missing: ""})]))
    assert "subscriber_address_missing" in codes(ln, "block")
    assert ln.status == "blocked"


def test_subscriber_n3_n4_and_billing_zip9_and_sv105():
    p = patient(dob=date(1990, 1, 2), sex="F")
    lines = derive([session(pos_override="11"), session("s2", dos=MON + timedelta(days=1))],
                   [row(), row("s2")], [p])
    text = build(lines, [p])
    segs = text.split("~\n")
    assert "N4*CHICAGO*IL*606011234" in segs  # 2010AA: 9 digits
    i = next(i for i, s in enumerate(segs) if s.startswith("NM1*IL"))
    assert segs[i + 1] == "N3*12 ELM ST" and segs[i + 2] == "N4*CHICAGO*IL*60614"
    clm = next(s for s in segs if s.startswith("CLM"))
    assert clm.split("*")[5] == "11:B:1"
    sv1 = [s for s in segs if s.startswith("SV1")]
    assert sv1[0].split("*")[5] == "" and sv1[1].split("*")[5] == "57"  # only where it differs
    assert_valid_837p(text)


def test_prv_bi_only_where_payer_requires_and_blocks_without_taxonomy():
    p = patient(payer="blueriver_ppo")
    lines = derive([session()], [row()], [p])
    text = build(lines, [p], payer="blueriver_ppo")
    assert "PRV*BI*PXC*261QR0405X~" in text
    assert_valid_837p(text, prv_required=True)
    sunrise = build(derive([session()], [row()]), [patient()])
    assert "PRV*BI" not in sunrise
    no_tax = derive_claim_lines(replace(PROGRAM, taxonomy=""), [p], [session()], [row()],
                                [auth()], RB)
    assert "taxonomy_missing" in codes(one(no_tax), "block")


def test_per_is_the_program_contact_and_a_placeholder_is_refused():
    from portal.rules.x12_837p import Submitter
    lines = derive([session()], [row()])
    with pytest.raises(ValueError, match="billing contact"):
        build_837p(lines, [patient()], X12_PROGRAM, RB.payer("sunrise_medicaid_mco"),
                   Submitter("LAKE", "Lake", "Billing", "0000000000"), RCV, ControlNumbers(1, 1, 1), NOW)
    assert "PER*IC*BILLING OFFICE*TE*3125550100~" in build(lines, [patient()])


def test_delimiter_census_value_makes_pyx12_fail_when_forced():
    """The validator itself catches a split segment, so our check is not the only guard."""
    p = patient()
    text = build(derive([session()], [row()], [p]), [p]).replace("REF*G1*IOP55102", "REF*G1*KC*455~\n30")
    ok, _ack, _log = pyx12_result(text)
    assert not ok


# --- POS, rendering provider, group size, per-15 code ---------------------------------------

@pytest.mark.parametrize("payer, override, pos", [
    ("blueriver_ppo", None, "11"),          # the payer file says 11: no default 57 overrides it
    ("sunrise_medicaid_mco", None, "57"),
    ("blueriver_ppo", "57", "57"),          # the session records another location
])
def test_pos_from_payer_rule_unless_session_records_one(payer, override, pos):
    ln = one(derive([session(pos_override=override)], [row()], [patient(payer=payer)]))
    assert ln.pos == pos


@pytest.mark.parametrize("payer, expected_npi", [
    ("sunrise_medicaid_mco", "1234567893"),   # facilitator
    ("keystone_commercial_hmo", None),        # none: agency-only billing
])
def test_rendering_provider_per_payer(payer, expected_npi):
    p = patient(payer=payer)
    ln = one(derive([session()], [row()], [p]))
    assert ln.rendering_npi == expected_npi
    if ln.status == "ready":
        text = build([ln], [p], payer=payer)
        assert ("NM1*82" in text) == bool(expected_npi)
        assert_valid_837p(text)


def test_rendering_supervisor_needs_a_supervisor():
    rb_rules = RB.rules_for("sunrise_medicaid_mco", MON)
    from portal.rules.payer_rules import RuleBook
    payer = RB.payer("sunrise_medicaid_mco")
    sup_payer = replace(payer, versions=tuple(replace(v, rendering_provider="supervisor") for v in payer.versions))
    rb = RuleBook({**RB.payers, "sunrise_medicaid_mco": sup_payer})
    assert rb_rules.rendering_provider == "facilitator"
    missing = one(derive_claim_lines(PROGRAM, [patient()], [session()], [row()], [auth()], rb))
    assert "rendering_supervisor_missing" in codes(missing, "block")
    ok = one(derive_claim_lines(PROGRAM, [patient()], [session(supervising_npi="1598765430",
                                                               supervising_name="Sam Super",
                                                               supervising_credential="LCSW")],
                                [row()], [auth()], rb))
    assert ok.status == "ready" and ok.rendering_npi == "1598765430"


@pytest.mark.parametrize("payer, headcount, status, mods", [
    ("blueriver_ppo", 1, "blocked", ("HF", "HQ")),          # group_under_min: block
    ("blueriver_ppo", 2, "ready", ("HF", "HQ")),
    ("keystone_commercial_hmo", 1, "ready", ("HF",)),       # individual: billed without HQ (warning)
])
def test_group_minimum(payer, headcount, status, mods):
    p = patient(payer=payer)
    ln = one(derive([session(headcount_present=headcount)], [row()], [p]))
    assert ln.modifiers == mods
    if payer == "blueriver_ppo":
        assert ln.status == status
        assert ("group_under_minimum" in codes(ln, "block")) == (headcount < 2)
    else:
        assert "group_under_minimum" in codes(ln, "warning")


def test_per_15_code_is_payer_data_and_authorizations_name_their_code():
    payer = RB.payer("keystone_commercial_hmo")
    v = payer.versions[0]
    h0005 = replace(v, bill_codes=("H0015", "H0005"), h2019=replace(v.h2019, code="H0005"))
    from portal.rules.payer_rules import RuleBook
    rb = RuleBook({**RB.payers, payer.key: replace(payer, versions=(h0005,))})
    p = patient(payer=payer.key)
    short = session(end=(10, 0))
    ln = one(derive_claim_lines(PROGRAM, [p], [short], [row()], [auth(code="H0005")], rb))
    assert (ln.code, ln.units, ln.status) == ("H0005", 4, "ready")
    wrong = one(derive_claim_lines(PROGRAM, [p], [short], [row()], [auth(code="H2019")], rb))
    assert "authorization_missing" in codes(wrong, "block")


# --- other levels, units, weekly, breaks -----------------------------------------------------

def test_iop_on_a_php_day_is_blocked():
    p = patient(other_level_days={"php": frozenset({MON})})
    assert "exclusive_level_same_day" in codes(one(derive([session()], [row()], [p])), "block")


def test_units_consumed_only_by_billable_lines_at_the_bucket_boundary():
    days = [MON + timedelta(days=i) for i in range(3)]
    sessions = [session(f"s{i}", dos=d) for i, d in enumerate(days)]
    rows = [row("s0", signed=False), row("s1"), row("s2")]  # day 1 blocked (unsigned)
    lines = derive(sessions, rows, auths=[auth(units=2)])
    assert [ln.status for ln in lines] == ["blocked", "ready", "ready"]
    assert "authorization_units_exhausted" not in codes(lines[2])
    # with all three billable, the third exceeds the 2 units
    lines = derive(sessions, [row("s0"), row("s1"), row("s2")], auths=[auth(units=2)])
    assert [ln.status for ln in lines] == ["ready", "ready", "blocked"]
    assert "authorization_units_exhausted" in codes(lines[2], "block")


@pytest.mark.parametrize("break_minutes, minutes, status", [(1, 179, "blocked"), (0, 180, "ready"),
                                                             (15, 180, "ready")])
def test_break_minutes_are_not_service_time(break_minutes, minutes, status):
    end = (12, 0) if break_minutes <= 1 else (12, 15)
    ln = one(derive([session(end=end, break_minutes=break_minutes)], [row()]))
    assert (ln.minutes_attended, ln.status) == (minutes, status)


def test_late_arrival_gets_a_proportional_share_of_breaks():
    s = session(start=(9, 0), end=(12, 0), break_minutes=30)
    ln = one(derive([s], [row(status="late", arrival=at(MON, 10, 30))]))
    assert ln.minutes_attended == 90 - 15


def test_weekly_under_floor_blocks_after_the_allowed_step_down_weeks():
    """BlueRiver: blocking, 2 consecutive under-floor weeks allowed; the third blocks."""
    p = patient(payer="blueriver_ppo")
    sessions, rows = [], []
    for w in range(4):
        for d in range(2):  # two 3-hour days: 360 min < 540 floor
            day = MON + timedelta(weeks=w, days=d)
            sessions.append(session(f"s{w}{d}", dos=day))
            rows.append(row(f"s{w}{d}"))
    lines = derive(sessions, rows, [p], auths=[auth(units=40, end=date(2026, 12, 31))])
    by_week = {}
    for ln in lines:
        by_week.setdefault(ln.dos.isocalendar()[1], ln)
    statuses = [by_week[k].status for k in sorted(by_week)]
    assert statuses == ["ready", "ready", "blocked", "blocked"]
    weeks = weekly_summary(lines, [p], RB)
    assert [any(r.severity == "block" for r in w.reasons) for w in weeks] == [False, False, True, True]


def test_weekly_stays_a_warning_where_the_payer_says_so():
    lines = derive([session()], [row()])
    assert "week_under_floor" in codes(one(lines), "warning")


# --- 999 --------------------------------------------------------------------------------------

def test_999_from_pyx12_maps_errors_to_claims():
    p1, p2 = patient("p1"), patient("p2", mrn="MRN2")
    lines = derive([session()], [row(), row(pid="p2")], [p1, p2])
    text = build(lines, [p1, p2])
    ok, ack, _ = pyx12_result(text)
    assert ok and parse_999(ack).status == "A"
    broken = text.replace("DTP*472*D8*20261102~\nSE", "DTP*472*D8*2026110~\nSE")  # last claim's date
    ok, ack, _ = pyx12_result(broken)
    assert not ok
    parsed = parse_999(ack)
    assert parsed.group_control == "5" and parsed.status in ("R", "P")
    errors = claim_errors(broken, parsed.sets[0])
    assert errors and errors[0]["claim"].startswith("MRN2-20261102")


def test_the_suite_validates_every_837p_it_builds():
    import portal.rules.x12_837p as mod
    import portal.services.claim_exports as svc
    from tests import x12_check

    assert getattr(mod.build_837p, "validating", False)
    assert svc.build_837p is mod.build_837p and build_837p is mod.build_837p
    before = len(x12_check.VALIDATED)
    build(derive([session()], [row()]), [patient()])
    assert len(x12_check.VALIDATED) == before + 1
