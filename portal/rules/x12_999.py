"""Read a 999 implementation acknowledgment (005010X231A1) and map its errors to our claims.

``parse_999(text) -> Ack999``: the functional group it answers (AK1-02), each transaction set's
result (AK2-02 control number, IK5-01) with its segment errors (IK3: segment id, position in the
set, loop; IK4: element position and error code), and the group result (AK9-01: A accepted,
E accepted with errors, P partially accepted, R rejected).

``claim_errors(our_837p_text, set_ack)`` names the claim (CLM01) each error lies in, from the
segment position the 999 reports (ST is position 1), or "transaction" before the first claim.
Separators are read from the 999's own ISA (element = 4th character, component = ISA16,
segment terminator = the character after ISA16).
"""
from __future__ import annotations

from dataclasses import dataclass, field

IK3_CODES = {"1": "unrecognized segment ID", "2": "unexpected segment",
             "3": "required segment missing", "4": "loop occurs over maximum times",
             "5": "segment exceeds maximum use", "6": "segment not in defined transaction set",
             "7": "segment not in proper sequence", "8": "segment has data element errors",
             "I4": "implementation 'not used' segment present",
             "I6": "implementation dependent segment missing",
             "I7": "implementation loop occurs under minimum times",
             "I8": "implementation segment below minimum use",
             "I9": "implementation dependent 'not used' segment present"}
IK4_CODES = {"1": "required data element missing", "2": "conditional required data element missing",
             "3": "too many data elements", "4": "data element too short",
             "5": "data element too long", "6": "invalid character in data element",
             "7": "invalid code value", "8": "invalid date", "9": "invalid time",
             "10": "exclusion condition violated", "12": "too many repetitions",
             "13": "too many components", "I10": "implementation 'not used' data element present",
             "I11": "implementation too few repetitions", "I12": "implementation pattern match failure",
             "I13": "implementation dependent 'not used' data element present",
             "I6": "code value not used in implementation",
             "I9": "implementation dependent data element missing"}


@dataclass(frozen=True)
class SegmentError:
    segment: str
    position: int
    loop: str
    code: str
    element: str = ""
    element_code: str = ""
    bad_value: str = ""

    @property
    def message(self) -> str:
        text = f"{self.segment} (segment {self.position}"
        text += f", loop {self.loop})" if self.loop else ")"
        text += f": {IK3_CODES.get(self.code, self.code)}"
        if self.element:
            text += f"; element {self.element}: {IK4_CODES.get(self.element_code, self.element_code)}"
            if self.bad_value:
                text += f" ({self.bad_value!r})"
        return text


@dataclass
class SetAck:
    control: str
    status: str = ""
    errors: list[SegmentError] = field(default_factory=list)


@dataclass
class Ack999:
    group_control: str
    status: str
    sets: list[SetAck]


def _segments(text: str) -> tuple[list[list[str]], str]:
    text = text.lstrip()
    if not text.startswith("ISA") or len(text) < 106:
        raise ValueError("it does not start with an ISA segment")
    element, component, terminator = text[3], text[104], text[105]
    segs = [s.strip("\r\n ") for s in text.split(terminator)]
    return [s.split(element) for s in segs if s], component


def parse_999(text: str) -> Ack999:
    segs, component = _segments(text)
    st = next((s for s in segs if s[0] == "ST"), None)
    if st is None or len(st) < 2 or st[1] != "999":
        raise ValueError("its transaction set is not a 999")
    ak1 = next((s for s in segs if s[0] == "AK1"), None)
    ak9 = next((s for s in segs if s[0] == "AK9"), None)
    if ak1 is None or len(ak1) < 3 or ak9 is None or len(ak9) < 2:
        raise ValueError("AK1 or AK9 is missing")
    sets: list[SetAck] = []
    cur: SetAck | None = None
    last_ik3: list[str] | None = None
    for s in segs:
        if s[0] == "AK2" and len(s) > 2:
            cur = SetAck(s[2])
            sets.append(cur)
        elif s[0] == "IK3" and cur is not None:
            last_ik3 = s
            cur.errors.append(SegmentError(s[1], int(s[2]) if s[2].isdigit() else 0,
                                           s[3] if len(s) > 3 else "", s[4] if len(s) > 4 else ""))
        elif s[0] == "IK4" and cur is not None and last_ik3 is not None and cur.errors:
            prev = cur.errors.pop()
            cur.errors.append(SegmentError(prev.segment, prev.position, prev.loop, prev.code,
                                           s[1].split(component)[0], s[3] if len(s) > 3 else "",
                                           s[4] if len(s) > 4 else ""))
        elif s[0] == "IK5" and cur is not None:
            cur.status = s[1]
    return Ack999(ak1[2], ak9[1], sets)


def claim_errors(our_837p: str, set_ack: SetAck) -> list[dict]:
    """Each error with the CLM01 of the claim it lies in (positions count from ST = 1)."""
    segs, _ = _segments(our_837p)
    st_index = next(i for i, s in enumerate(segs) if s[0] == "ST")
    claim_at: list[str] = []
    current = "transaction"
    for s in segs[st_index:]:
        if s[0] == "CLM":
            current = s[1]
        elif s[0] == "HL":  # a provider/subscriber loop before its first claim
            current = "transaction"
        claim_at.append(current)
    out = []
    for e in set_ack.errors:
        claim = claim_at[e.position - 1] if 0 < e.position <= len(claim_at) else "transaction"
        out.append({"claim": claim, "message": e.message})
    if not out and set_ack.status not in ("A", "E"):
        out.append({"claim": "transaction", "message": f"transaction set result {set_ack.status}"})
    return out
