"""May a no-show or late-cancellation fee be charged? Each refusal names its rule and source.

Sources (DOMAIN.md §5 and rule 28/29):
- Medicaid: no charge for missed or cancelled appointments; 42 CFR 447.15, 42 USC
  1396a(a)(14) [S58][S59].
- QMB dual eligibles: protected from Medicare cost-sharing bills; 42 USC 1396a(n)(3)(B) [S63].
- Medicare: only under a policy applied alike to all patients at one amount, billed to the
  patient and never to Medicare; Medicare Claims Processing Manual ch. 1 §30.3.13 (CR5613)
  [S60][S61]. If a contract forbids the fee for another payer's members, the policy is not
  uniform, so Medicare patients cannot be charged either [S65].
- Commercial: per the contract, recorded in the payer's rule file (``no_show_fee``), with any
  cap (Magellan caps at $90) [S61][S62].
- Every payer: a written policy acknowledged in a signature dated before the absence
  [S63][S64][S64b].
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.rules.no_shows import FEE_CLASSES, LABELS, PolicyTerms

CONTRACT_ALLOWED = "allowed"
CONTRACT_FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class FeeRule:
    code: str
    message: str
    source: str


@dataclass(frozen=True)
class FeeDecision:
    allowed: bool
    amount_cents: int
    refusals: tuple[FeeRule, ...]
    notes: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        if self.allowed:
            return "Fee may be charged to the patient" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        return "; ".join(f"{r.message} [{r.source}]" for r in self.refusals)


MEDICAID = FeeRule("medicaid", "Medicaid members may not be charged for missed or cancelled "
                   "appointments", "42 CFR 447.15; 42 USC 1396a(a)(14); DOMAIN §5 [S58][S59]")
QMB = FeeRule("qmb", "Qualified Medicare Beneficiaries may not be billed",
              "42 USC 1396a(n)(3)(B); DOMAIN §5 [S63]")
MEDICARE_NOT_UNIFORM = FeeRule(
    "medicare_not_uniform", "Medicare patients may be charged only under a policy applied alike "
    "to every patient", "Medicare Claims Processing Manual ch. 1 §30.3.13 (CR5613) [S60][S65]")
CONTRACT = FeeRule("contract", "The payer's contract does not allow charging its members",
                   "payer rule file no_show_fee; DOMAIN §5 [S61][S62]")
NO_ACK = FeeRule("no_acknowledgment", "No signed acknowledgment of the policy dated before the "
                 "absence", "DOMAIN §5, rule 29 [S63][S64][S64b]")
NO_POLICY = FeeRule("no_policy", "No written policy was in force on this date",
                    "DOMAIN §5 [S63]")
NO_FEE = FeeRule("no_fee", "The policy in force sets no fee", "written policy")


def fee_decision(classification: str, *, payer_kind: str, contract: str | None,
                 cap_cents: int | None, qmb: bool, policy: PolicyTerms | None,
                 acknowledged_at: datetime | None, absence_at: datetime,
                 forbidding_payers: tuple[str, ...] = ()) -> FeeDecision:
    """Whether ``classification`` (on the absence starting at ``absence_at``) may carry the
    policy's fee. ``contract`` is the payer file's ``no_show_fee`` (commercial payers);
    ``forbidding_payers`` names payers whose contracts forbid the fee (they make the policy
    non-uniform for Medicare). Collects every refusal, not just the first."""
    refusals: list[FeeRule] = []
    notes: list[str] = []
    if classification not in FEE_CLASSES:
        refusals.append(FeeRule("classification", f"A {LABELS.get(classification, classification).lower()} "
                                "carries no fee", "written policy"))
    if policy is None:
        refusals.append(NO_POLICY)
    elif policy.fee_cents <= 0:
        refusals.append(NO_FEE)
    if payer_kind == "medicaid":
        refusals.append(MEDICAID)
    if qmb:
        refusals.append(QMB)
    if payer_kind == "medicare":
        if policy is None or not policy.uniform:
            refusals.append(MEDICARE_NOT_UNIFORM)
        elif forbidding_payers:
            refusals.append(FeeRule(MEDICARE_NOT_UNIFORM.code, "The policy is not applied alike: "
                                    f"contracts forbid it for {', '.join(forbidding_payers)}",
                                    MEDICARE_NOT_UNIFORM.source))
        else:
            notes.append("bill the patient, never Medicare")
    if payer_kind == "commercial" and contract != CONTRACT_ALLOWED:
        refusals.append(CONTRACT)
    amount = policy.fee_cents if policy else 0
    if cap_cents is not None and amount > cap_cents:
        refusals.append(FeeRule("cap", f"The contract caps the fee at ${cap_cents / 100:,.2f}",
                                "payer rule file no_show_fee_cap_cents [S61]"))
    if acknowledged_at is None or acknowledged_at >= absence_at:
        refusals.append(NO_ACK)
    return FeeDecision(not refusals, amount if not refusals else 0, tuple(refusals), tuple(notes))
