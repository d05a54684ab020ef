"""837P generator (structural validation) and the claim-line CSV."""
from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date, datetime

import pytest

from tests.x12_check import assert_valid_837p

from portal.rules.claim_csv import HEADERS, claim_csv_rows, dollars, write_claim_csv
from portal.rules.facts import ClaimLine, PatientFact, ProgramFact, Reason
from portal.rules.payer_rules import load_all
from portal.rules.x12_837p import (
    ControlNumbers,
    Receiver,
    Submitter,
    build_837p,
    split_person_name,
)

RB = load_all()
PROGRAM = ProgramFact(billing_npi="1999999984", name="Lakeside Recovery IOP", tax_id="12-3456789",
                      address_line="400 Lake St", city="Chicago", state="IL", postal_code="606011234",
                      taxonomy="261QR0405X")
SUB = Submitter(id="LAKESIDE01", name="Lakeside Recovery IOP", contact_name="Billing Office",
                contact_phone="(312) 555-0100")
RCV = Receiver(id="CLEARHOUSE", name="Demo Clearinghouse")
CTRL = ControlNumbers(interchange=42, group=7, transaction=1)
NOW = datetime(2026, 11, 30, 14, 5)


def line(pid="p1", dos=date(2026, 11, 2), auth="IOP-55102", npi="1234567893", name="Dana Whitfield",
         status="ready", payer="sunrise_medicaid_mco", mods=("HF",), charge=16500, sup=None, **kw):
    return ClaimLine(
        patient_id=pid, dos=dos, payer_key=payer, code=kw.pop("code", "H0015"), units=kw.pop("units", 1),
        modifiers=mods, pos=kw.pop("pos", "57"), rendering_npi=npi, rendering_name=name,
        rendering_credential="LCSW", supervising_npi=sup, supervising_name="Sam Super" if sup else "",
        authorization_number=auth, charge_cents=charge, minutes_attended=180, status=status,
        reasons=(), session_ids=("s1",), **kw)


PATIENTS = [
    PatientFact("p1", "100231", "Alvarez, Marisol", "sunrise_medicaid_mco", "SMC44120931",
                diagnoses=("F10.20", "F12.20"), dob=date(1988, 3, 14), sex="F",
                address_line="12 Elm St", city="Chicago", state="IL", postal_code="60614"),
    PatientFact("p2", "100233", "José García-López", "sunrise_medicaid_mco", "SMC44120933",
                diagnoses=("F11.20",), last_name="García-López", first_name="José",
                address_line="7 Oak Ave", city="Evanston", state="IL", postal_code="602011234"),
]


def validate_837p(text: str) -> dict:
    """Independent structural check plus pyx12; returns parsed facts, raises AssertionError."""
    assert_valid_837p(text)
    assert text.endswith("~\n")
    segs = [s.strip("\n") for s in text.split("~") if s.strip()]
    els = [s.split("*") for s in segs]
    assert els[0][0] == "ISA" and len(segs[0]) == 105, "ISA is fixed width (106 with terminator)"
    assert els[1][0] == "GS" and els[-2][0] == "GE" and els[-1][0] == "IEA"
    isa, gs, ge, iea = els[0], els[1], els[-2], els[-1]
    assert isa[13] == iea[2], "ISA13 == IEA02"
    assert iea[1] == "1"
    assert gs[6] == ge[2], "GS06 == GE02"
    st_idx = [i for i, e in enumerate(els) if e[0] == "ST"]
    se_idx = [i for i, e in enumerate(els) if e[0] == "SE"]
    assert len(st_idx) == len(se_idx) == int(ge[1])
    for st, se in zip(st_idx, se_idx):
        assert els[st][2] == els[se][2], "ST02 == SE02"
        assert int(els[se][1]) == se - st + 1, "SE01 counts ST..SE"
        assert els[st][3] == gs[8] == "005010X222A1"
    # CLM02 == sum of its SV102s
    claims, cur = [], None
    for e in els:
        if e[0] == "CLM":
            cur = {"clm": e, "sv1": [], "ref_g1": [], "hi": None, "nm1": []}
            claims.append(cur)
        elif e[0] == "HL":
            cur = None  # a new subscriber loop ends the previous claim
        elif cur is not None and e[0] == "SV1":
            cur["sv1"].append(e)
        elif cur is not None and e[0] == "REF" and e[1] == "G1":
            cur["ref_g1"].append(e[2])
        elif cur is not None and e[0] == "HI":
            cur["hi"] = e
        elif cur is not None and e[0] == "NM1":
            cur["nm1"].append(e)
    for c in claims:
        total = sum(float(sv[2]) for sv in c["sv1"])
        assert abs(float(c["clm"][2]) - total) < 0.005, (c["clm"], total)
        assert len(c["ref_g1"]) <= 1
        assert all("-" not in r and " " not in r for r in c["ref_g1"])
        assert c["hi"][1].startswith("ABK:") and all(x.startswith("ABF:") for x in c["hi"][2:])
    hl = [e for e in els if e[0] == "HL"]
    assert [h[1] for h in hl] == [str(i) for i in range(1, len(hl) + 1)], "HL ids are 1..n"
    return {"segments": segs, "claims": claims, "els": els}


def test_837p_envelope_and_claims():
    lines = [
        line(), line(dos=date(2026, 11, 3)),
        line(dos=date(2026, 11, 4), auth=None),                    # unauthorized: own claim
        line("p2", mods=("HF", "HQ"), auth="IOP 55-103", dos=date(2026, 11, 16), npi="1999999984"),
    ]
    text = build_837p(lines, PATIENTS, PROGRAM, RB.payer("sunrise_medicaid_mco"), SUB, RCV, CTRL, NOW)
    v = validate_837p(text)
    els = v["els"]
    assert els[0][13] == "000000042" and els[0][6].strip() == "LAKESIDE01" and els[0][15] == "T"
    clms = [c["clm"] for c in v["claims"]]
    assert [c[2] for c in clms] == ["330", "165", "165"]
    assert [c["ref_g1"] for c in v["claims"]] == [["IOP55102"], [], ["IOP55103"]]
    assert clms[0][5] == "57:B:1"
    assert "SV1*HC:H0015:HF*165*UN*1***1:2" in v["segments"]
    assert "SV1*HC:H0015:HF:HQ*165*UN*1***1" in v["segments"]
    assert "HI*ABK:F1020*ABF:F1220" in v["segments"]
    assert "NM1*85*2*LAKESIDE RECOVERY IOP*****XX*1999999984" in v["segments"]
    assert "REF*EI*123456789" in v["segments"]
    assert "NM1*IL*1*ALVAREZ*MARISOL****MI*SMC44120931" in v["segments"]
    assert "NM1*IL*1*GARCIA-LOPEZ*JOSE****MI*SMC44120933" in v["segments"]
    assert "DMG*D8*19880314*F" in v["segments"]
    i = v["segments"].index("NM1*IL*1*ALVAREZ*MARISOL****MI*SMC44120931")
    assert v["segments"][i + 1:i + 3] == ["N3*12 ELM ST", "N4*CHICAGO*IL*60614"]
    assert "SBR*P*18*******MC" in v["segments"]
    assert "NM1*PR*2*SUNRISE MEDICAID MCO*****PI*SUNRISE01" in v["segments"]
    assert "DTP*472*D8*20261103" in v["segments"]
    # 2310B only when the rendering clinician differs from the billing provider
    assert [[n[1] for n in c["nm1"]] for c in v["claims"]] == [["82"], ["82"], []]
    assert "NM1*82*1*WHITFIELD*DANA****XX*1234567893" in v["segments"]


def test_837p_line_level_rendering_and_supervisor():
    lines = [line(sup="1111111112"), line(dos=date(2026, 11, 3), npi="1098765438", name="Marcus Greene")]
    v = validate_837p(build_837p(lines, PATIENTS, PROGRAM, RB.payer("sunrise_medicaid_mco"), SUB, RCV,
                                 CTRL, NOW))
    segs = v["segments"]
    # two clinicians: no 2310B; each line gets 2420A; supervisor only on its line (2420D)
    i_lx2 = segs.index("LX*2")
    assert segs[i_lx2 - 2] == "NM1*82*1*WHITFIELD*DANA****XX*1234567893"
    assert segs[i_lx2 - 1] == "NM1*DQ*1*SUPER*SAM****XX*1111111112"
    assert segs[i_lx2 + 3] == "NM1*82*1*GREENE*MARCUS****XX*1098765438"


def test_837p_h2019_cents_and_many_lines():
    lines = [line(dos=date(2026, 1, 1 + i), code="H2019", units=3, charge=5550) for i in range(30)] + \
            [line(dos=date(2026, 2, 1 + i), code="H2019", units=3, charge=5550) for i in range(25)]
    v = validate_837p(build_837p(lines, PATIENTS, PROGRAM, RB.payer("sunrise_medicaid_mco"), SUB, RCV,
                                 CTRL, NOW))
    assert [len(c["sv1"]) for c in v["claims"]] == [50, 5]
    assert v["claims"][0]["sv1"][0][2] == "55.5"


@pytest.mark.parametrize("lines, payer, message", [
    ([], "sunrise_medicaid_mco", "no claim lines"),
    ([line(status="blocked")], "sunrise_medicaid_mco", "not ready"),
    ([line(payer="blueriver_ppo")], "sunrise_medicaid_mco", "not sunrise_medicaid_mco"),
    ([line(payer="self_pay")], "self_pay", "self-pay"),
    ([line("zz")], "sunrise_medicaid_mco", "unknown patient"),
])
def test_837p_refuses(lines, payer, message):
    with pytest.raises(ValueError, match=message):
        build_837p(lines, PATIENTS, PROGRAM, RB.payer(payer), SUB, RCV, CTRL, NOW)


@pytest.mark.parametrize("name, expected", [
    ("Dana Whitfield", ("Whitfield", "Dana")),
    ("Whitfield, Dana", ("Whitfield", "Dana")),
    ("Marcus Greene, LPC, LCADC", ("Greene", "Marcus")),
    ("Cher", ("Cher", "")),
])
def test_split_person_name(name, expected):
    assert split_person_name(name) == expected


def test_end_to_end_from_derived_lines():
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from portal.rules.claim_lines import derive_claim_lines
    from portal.rules.facts import AttendanceFact, AuthorizationFact, SessionFact

    tz = ZoneInfo("America/Chicago")
    sessions, rows = [], []
    for i in range(5):
        d = date(2026, 11, 13) + timedelta(days=i)
        if d.weekday() >= 5:
            continue
        sessions.append(SessionFact(
            f"s{i}", "AM IOP", d, None, None, datetime(d.year, d.month, d.day, 9, tzinfo=tz),
            datetime(d.year, d.month, d.day, 12, tzinfo=tz), "u1", "Dana Whitfield", "LCSW",
            "1234567893", roster_closed=True, archive_seq=i))
        rows += [AttendanceFact(f"s{i}", "p1", "present", signed=True),
                 AttendanceFact(f"s{i}", "p2", "present", signed=True)]
    auths = [AuthorizationFact("p1", "IOP-55102", date(2026, 11, 2), date(2026, 12, 1), 12),
             AuthorizationFact("p2", "IOP-55103", date(2026, 11, 2), date(2026, 12, 1), 12)]
    # A subscriber without an address is not billable (issue 8): give p2 one for this run.
    from dataclasses import replace

    patients = [PATIENTS[0], replace(PATIENTS[1], address_line="5811 S Kenwood Ave",
                                     city="Chicago", state="IL", postal_code="606372011")]
    lines = derive_claim_lines(PROGRAM, patients, sessions, rows, auths, RB)
    ready = [ln for ln in lines if ln.status == "ready"]
    assert len(ready) == 6
    v = validate_837p(build_837p(ready, PATIENTS, PROGRAM, RB.payer("sunrise_medicaid_mco"), SUB, RCV,
                                 CTRL, NOW))
    sv1 = [s for s in v["segments"] if s.startswith("SV1")]
    # Friday 11-13 under version 1 (no HQ), Monday 11-16 onward under version 2 (HQ)
    assert sv1[0].startswith("SV1*HC:H0015:HF*") and sv1[1].startswith("SV1*HC:H0015:HF:HQ*")


# --- CSV -----------------------------------------------------------------------------------

def test_claim_csv_rows_and_injection_guard():
    bad = PatientFact("p3", "100299", "=HYPERLINK(\"x\")", "sunrise_medicaid_mco", "M3")
    blocked = replace(line("p3", status="blocked", auth=None), reasons=(
        Reason("patient_not_signed", "did not sign", "facilitator"),
        Reason("week_under_floor", "360 < 540", "clinician", severity="warning"),
        Reason("authorization_missing", "none", "billing"),
    ))
    headers, rows = claim_csv_rows([line(mods=("HF", "HQ")), blocked], PATIENTS + [bad])
    assert headers == HEADERS and len(rows) == 2
    r0 = dict(zip(headers, rows[0]))
    assert (r0["dos"], r0["mrn"], r0["modifiers"], r0["charge_cents"], r0["charge_dollars"]) == (
        "2026-11-02", "100231", "HF:HQ", "16500", "165.00")
    r1 = dict(zip(headers, rows[1]))
    assert r1["patient_name"].startswith("'=")
    assert r1["blocking_reasons"] == "patient_not_signed: did not sign | authorization_missing: none"
    assert r1["warnings"] == "week_under_floor: 360 < 540"
    assert r1["who_must_act"] == "facilitator,billing"
    buf = io.StringIO(newline="")
    assert write_claim_csv(buf, [line()], PATIENTS) == 1
    parsed = list(csv.reader(io.StringIO(buf.getvalue())))
    assert parsed[0] == list(HEADERS) and len(parsed) == 2


@pytest.mark.parametrize("cents, text", [(0, "0.00"), (5, "0.05"), (16500, "165.00"), (-1850, "-18.50")])
def test_dollars(cents, text):
    assert dollars(cents) == text
