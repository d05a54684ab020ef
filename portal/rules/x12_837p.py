"""X12 837 Professional (005010X222A1) for ready claim lines of one payer.

``build_837p(lines, patients, program, payer, submitter, receiver, control, now) -> str``
returns one interchange (ISA..IEA) holding one functional group and one transaction set.
Segments end with "~" and a newline for readability; elements are separated by "*",
components by ":" and repetitions by "^".

Claim shape (DOMAIN.md §8.1 "CMS-1500 / 837P"):
- 2010AA carries the billing NPI (item 33a) [S95].
- One 2300 CLM per patient per authorization number: one REF*G1 prior authorization per
  claim, hyphens and spaces removed, authorized and unauthorized lines never mixed; no 2400
  REF*G1 because every line of a claim shares the claim's number (NUCC item 23 [S98], X12
  RFI 2459 [S97], [S99b]). A claim holds at most 50 service lines (837P 2400 repeat).
- HI: principal diagnosis ABK, others ABF, ICD-10-CM without the dot, at most 12.
- 2310B rendering provider when one clinician rendered every line and differs from the
  billing provider; 2420A per line otherwise (First Coast [S95], Sunflower [S96], X12 [S100]).
  2310D/2420D supervising provider the same way.
- 2400 LX / SV1 ``HC:H0015:HF:HQ`` / charge / UN units / POS / diagnosis pointer; DTP*472.
- H0015 carries 1 unit per DOS (BCBS NC, Nebraska Blue [S110][S111]).

- 2010AA N4 carries the 9-digit ZIP (5010 requires ZIP+4 for the billing provider).
- PRV*BI (billing provider taxonomy) is sent where the payer's rules say ``send_taxonomy``.
- 2010BA N3/N4 (subscriber address) is always sent: SBR02 is 18 (the patient is the
  subscriber), where the guide requires it; DMG03 is F, M or U (``x12_fields.dmg_sex``).
- SV105 (line POS) only when it differs from the claim's CLM05-1.
- 1000A PER is the program's billing contact from setup.
- Claim frequency (CLM05-3): 1 original, 7 replacement, 8 void; 7 and 8 carry REF*F8 with the
  original claim's reference.

Every element is checked against the X12 character set and our separators
(``portal.rules.x12_fields``): identifiers are sent as recorded or the build fails with
``ValueError`` naming the field (claim-line derivation blocks such lines first, so a ready
line never gets here with one); names and addresses are transliterated to ASCII.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from portal.rules.facts import STATUS_READY, ClaimLine, PatientFact, ProgramFact
from portal.rules.payer_rules import Payer
from portal.rules.x12_fields import ALLOWED, address_missing, dmg_sex, problem, transliterate

MAX_LINES_PER_CLAIM = 50
FREQUENCY_ORIGINAL, FREQUENCY_REPLACEMENT, FREQUENCY_VOID = "1", "7", "8"
FREQUENCIES = (FREQUENCY_ORIGINAL, FREQUENCY_REPLACEMENT, FREQUENCY_VOID)
MAX_DIAGNOSES = 12
IMPLEMENTATION = "005010X222A1"


@dataclass(frozen=True)
class Submitter:
    """Loop 1000A and ISA06/GS02. ``id`` is the trading-partner id the clearinghouse assigned."""

    id: str
    name: str
    contact_name: str
    contact_phone: str  # digits only, e.g. "3125550100"


@dataclass(frozen=True)
class Receiver:
    """Loop 1000B and ISA08/GS03."""

    id: str
    name: str


@dataclass(frozen=True)
class ControlNumbers:
    """ISA13 (interchange, 1..999999999), GS06 (group), ST02 (transaction set).
    ``usage`` ISA15: T = test, P = production."""

    interchange: int
    group: int
    transaction: int
    usage: str = "T"


def _text(value: str, limit: int = 60) -> str:
    """ASCII upper-case text with X12 delimiters and characters outside the X12 character
    set removed ("García-López" -> "GARCIA-LOPEZ")."""
    ascii_ = "".join(c if c in ALLOWED else " " for c in transliterate(value))
    return re.sub(r"\s+", " ", ascii_).strip()[:limit]


def _id(value: str | None, field: str) -> str:
    """An identifier exactly as recorded; ``ValueError`` naming ``field`` if it can't be sent."""
    why = problem(value, "id")
    if why:
        raise ValueError(f"{field}: {why}")
    return (value or "").strip()


def _amount(cents: int) -> str:
    """X12 R-type decimal: 16500 -> "165", 1850 -> "18.5"."""
    if cents % 100 == 0:
        return str(cents // 100)
    return f"{cents // 100}.{cents % 100:02d}".rstrip("0")


def _auth(number: str) -> str:
    return _id(re.sub(r"[\s-]+", "", number), "authorization number")


def _dx(code: str) -> str:
    return code.replace(".", "").strip().upper()


def split_person_name(name: str) -> tuple[str, str]:
    """("Whitfield", "Dana") from "Dana Whitfield", "Whitfield, Dana" or "Dana Whitfield, LCSW"
    (a credential after the comma is dropped when the part before has two or more words)."""
    name = (name or "").strip()
    if "," in name:
        head, tail = [p.strip() for p in name.split(",", 1)]
        if len(head.split()) == 1:
            return head, tail.split(",")[0].strip()
        name = head
    parts = name.split()
    if not parts:
        return "", ""
    if len(parts) == 1:
        return parts[0], ""
    return parts[-1], " ".join(parts[:-1])


def _patient_names(p: PatientFact) -> tuple[str, str]:
    if p.last_name:
        return p.last_name, p.first_name
    return split_person_name(p.display_name)


def _claims(lines: Sequence[ClaimLine]) -> list[tuple[object, str | None, list[ClaimLine]]]:
    """(patient_id, auth or None, lines) in order of first appearance, <= 50 lines each."""
    groups: dict[tuple, list[ClaimLine]] = defaultdict(list)
    for ln in sorted(lines, key=lambda ln: (str(ln.patient_id), ln.dos)):
        groups[(ln.patient_id, ln.authorization_number)].append(ln)
    out = []
    for (pid, auth), items in groups.items():
        for i in range(0, len(items), MAX_LINES_PER_CLAIM):
            out.append((pid, auth, items[i:i + MAX_LINES_PER_CLAIM]))
    return out


def build_837p(
    lines: Iterable[ClaimLine],
    patients: Iterable[PatientFact],
    program: ProgramFact,
    payer: Payer,
    submitter: Submitter,
    receiver: Receiver,
    control: ControlNumbers,
    now: datetime,
    *,
    frequency: str = FREQUENCY_ORIGINAL,
    original_claims: dict | None = None,
) -> str:
    """The 837P interchange text for ``lines`` (all ``ready``, all of ``payer``).

    ``now`` stamps ISA09/10, GS04/05 and BHT04/05 (pass clinic-local time).
    ``frequency`` 7 (replacement) or 8 (void) needs ``original_claims``: (patient_id, dos) ->
    the original claim's reference, sent in REF*F8.
    Raises ``ValueError`` when there are no lines, a line is not ready or belongs to another
    payer, the payer is self-pay, a patient is unknown or has no diagnosis or address, a
    value can't be sent in X12, the program lacks a 9-digit ZIP, a contact phone or a
    required taxonomy, or a control number is out of range.
    """
    lines = list(lines)
    if not lines:
        raise ValueError("no claim lines to send")
    if payer.kind == "self_pay":
        raise ValueError("self-pay lines are not sent on an 837P")
    for ln in lines:
        if ln.status != STATUS_READY:
            raise ValueError(f"line {ln.patient_id} {ln.dos} is {ln.status}, not ready")
        if ln.payer_key != payer.key:
            raise ValueError(f"line {ln.patient_id} {ln.dos} is for payer {ln.payer_key}, not {payer.key}")
    if not (1 <= control.interchange <= 999_999_999 and 1 <= control.group <= 999_999_999
            and 1 <= control.transaction <= 999_999_999):
        raise ValueError(f"control numbers out of range: {control}")
    if control.usage not in ("T", "P"):
        raise ValueError(f"ISA15 usage must be T or P, got {control.usage!r}")
    if frequency not in FREQUENCIES:
        raise ValueError(f"claim frequency must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")
    original_claims = original_claims or {}
    if frequency != FREQUENCY_ORIGINAL:
        missing = [ln for ln in lines if (ln.patient_id, ln.dos) not in original_claims]
        if missing:
            raise ValueError(f"a replacement or void needs the original claim of every line; "
                             f"none for {missing[0].patient_id} {missing[0].dos}")
    by_id = {p.patient_id: p for p in patients}
    for ln in lines:
        p = by_id.get(ln.patient_id)
        if p is None:
            raise ValueError(f"unknown patient {ln.patient_id!r}")
        if not p.diagnoses:
            raise ValueError(f"patient {p.mrn} has no diagnosis for HI")
        if address_missing(p):
            raise ValueError(f"patient {p.mrn}: subscriber address missing "
                             f"({', '.join(address_missing(p))})")
    zip9 = re.sub(r"[^0-9]", "", program.postal_code or "")
    if len(zip9) != 9:
        raise ValueError("the program's service ZIP must have 9 digits (ZIP+4) for loop 2010AA; "
                         "set it in the program setup")
    if not (program.address_line and program.city and re.fullmatch(r"[A-Z]{2}", program.state or "")):
        raise ValueError("the program's service address (street, city, state) is incomplete")
    phone = re.sub(r"[^0-9]", "", submitter.contact_phone or "")
    if len(phone) != 10 or phone == "0000000000" or not _text(submitter.contact_name):
        raise ValueError("the program's billing contact (name and 10-digit phone) is not set up")
    send_prv = any(payer.version_for(ln.dos).send_taxonomy for ln in lines)
    if send_prv and not re.fullmatch(r"[0-9A-Z]{9}X", program.taxonomy or ""):
        raise ValueError(f"{payer.name} requires the program's taxonomy code (PRV*BI); "
                         "set a 10-character taxonomy in the program setup")
    submitter_id = _id(submitter.id, "submitter id")
    receiver_id = _id(receiver.id, "receiver id")

    isa13 = f"{control.interchange:09d}"
    st02 = f"{control.transaction:04d}"
    seg: list[str] = []
    add = seg.append

    add(f"ST*837*{st02}*{IMPLEMENTATION}")
    add(f"BHT*0019*00*{isa13}{st02}*{now:%Y%m%d}*{now:%H%M}*CH")
    # 1000A submitter, 1000B receiver
    add(f"NM1*41*2*{_text(submitter.name)}*****46*{submitter_id}")
    add(f"PER*IC*{_text(submitter.contact_name)}*TE*{phone}")
    add(f"NM1*40*2*{_text(receiver.name)}*****46*{receiver_id}")
    # 2000A billing provider
    add("HL*1**20*1")
    if send_prv:
        add(f"PRV*BI*PXC*{program.taxonomy}")
    add(f"NM1*85*2*{_text(program.name)}*****XX*{_id(program.billing_npi, 'billing NPI')}")
    add("*".join(filter(None, ("N3", _text(program.address_line, 55), _text(program.address_line2, 55)))))
    add(f"N4*{_text(program.city, 30)}*{program.state}*{zip9}")
    add(f"REF*EI*{re.sub(r'[^0-9]', '', program.tax_id)}")

    hl = 1
    claims_by_patient: dict[object, list] = defaultdict(list)
    order: list[object] = []
    for pid, auth, items in _claims(lines):
        if pid not in claims_by_patient:
            order.append(pid)
        claims_by_patient[pid].append((auth, items))

    for pid in order:
        p = by_id[pid]
        hl += 1
        last, first = _patient_names(p)
        # 2000B subscriber = patient (SBR02 18 "self"), so no 2000C loop
        add(f"HL*{hl}*1*22*0")
        add(f"SBR*P*18*******{payer.claim_filing_indicator}")
        add(f"NM1*IL*1*{_text(last, 60)}*{_text(first, 35)}****MI*{_id(p.member_id, 'member ID')}")
        add("*".join(filter(None, ("N3", _text(p.address_line, 55), _text(p.address_line2, 55)))))
        add(f"N4*{_text(p.city, 30)}*{p.state.strip().upper()}*{_id(p.postal_code, 'ZIP')}")
        if p.dob is not None:
            add(f"DMG*D8*{p.dob:%Y%m%d}*{dmg_sex(p.sex)}")
        add(f"NM1*PR*2*{_text(payer.name)}*****PI*{_id(payer.payer_id, 'payer id')}")
        for k, (auth, items) in enumerate(claims_by_patient[pid], start=1):
            _claim(add, p, auth, items, k, program, frequency,
                   original_claims.get((pid, items[0].dos)))

    add(f"SE*{len(seg) + 1}*{st02}")
    envelope_head = [
        "ISA*00*          *00*          *ZZ*{:<15}*ZZ*{:<15}*{:%y%m%d}*{:%H%M}*^*00501*{}*0*{}*:".format(
            submitter_id[:15], receiver_id[:15], now, now, isa13, control.usage),
        f"GS*HC*{submitter_id}*{receiver_id}*{now:%Y%m%d}*{now:%H%M}*{control.group}*X*{IMPLEMENTATION}",
    ]
    envelope_tail = [f"GE*1*{control.group}", f"IEA*1*{isa13}"]
    return "".join(s + "~\n" for s in envelope_head + seg + envelope_tail)


def claim_id(mrn: str, first_dos, k: int) -> str:
    """CLM01, the patient control number: MRN, first DOS and the claim's place for the
    patient in this file (unique within a file; the export history keeps it per line)."""
    return f"{mrn}-{first_dos:%Y%m%d}-{k}"[:38]


def claim_ids(lines: Iterable[ClaimLine], patients: Iterable[PatientFact]) -> dict:
    """(patient_id, dos) -> the CLM01 ``build_837p`` gives that line's claim."""
    by_id = {p.patient_id: p for p in patients}
    out, seen = {}, defaultdict(int)
    for pid, _auth_no, items in _claims(list(lines)):
        seen[pid] += 1
        ref = claim_id(by_id[pid].mrn, items[0].dos, seen[pid])
        for ln in items:
            out[(pid, ln.dos)] = ref
    return out


def _claim(add, p: PatientFact, auth: str | None, items: list[ClaimLine], k: int,
           program: ProgramFact, frequency: str = FREQUENCY_ORIGINAL,
           original: str | None = None) -> None:
    total = sum(ln.charge_cents for ln in items)
    pos = items[0].pos
    pcn = claim_id(_id(p.mrn, "MRN"), items[0].dos, k)
    add(f"CLM*{pcn}*{_amount(total)}***{pos}:B:{frequency}*Y*A*Y*Y")
    if auth:
        add(f"REF*G1*{_auth(auth)}")
    if frequency != FREQUENCY_ORIGINAL:  # 2300 REF order: G1 prior authorization, then F8
        add(f"REF*F8*{_id(original, 'original claim reference')}")
    dxs = [_id(_dx(c), "diagnosis") for c in p.diagnoses][:MAX_DIAGNOSES]
    add("HI*" + "*".join(("ABK:" if i == 0 else "ABF:") + c for i, c in enumerate(dxs)))
    pointers = ":".join(str(i) for i in range(1, min(len(dxs), 4) + 1))

    rendering = {ln.rendering_npi for ln in items}
    claim_rendering = None
    if len(rendering) == 1:
        npi = next(iter(rendering))
        if npi and npi != program.billing_npi:
            claim_rendering = items[0]
            last, first = split_person_name(claim_rendering.rendering_name)
            add(f"NM1*82*1*{_text(last)}*{_text(first, 35)}****XX*{npi}")
    supervising = {ln.supervising_npi for ln in items}
    claim_supervising = len(supervising) == 1 and next(iter(supervising)) is not None
    if claim_supervising:
        last, first = split_person_name(items[0].supervising_name)
        add(f"NM1*DQ*1*{_text(last)}*{_text(first, 35)}****XX*{items[0].supervising_npi}")

    for i, ln in enumerate(items, start=1):
        add(f"LX*{i}")
        proc = ":".join(("HC", ln.code) + ln.modifiers)
        # SV105 only when the line's POS differs from the claim's (CLM05-1)
        add(f"SV1*{proc}*{_amount(ln.charge_cents)}*UN*{ln.units}*{ln.pos if ln.pos != pos else ''}**{pointers}")
        add(f"DTP*472*D8*{ln.dos:%Y%m%d}")
        if claim_rendering is None and len(rendering) > 1 and ln.rendering_npi \
                and ln.rendering_npi != program.billing_npi:
            last, first = split_person_name(ln.rendering_name)
            add(f"NM1*82*1*{_text(last)}*{_text(first, 35)}****XX*{ln.rendering_npi}")
        if not claim_supervising and ln.supervising_npi:
            last, first = split_person_name(ln.supervising_name)
            add(f"NM1*DQ*1*{_text(last)}*{_text(first, 35)}****XX*{ln.supervising_npi}")
