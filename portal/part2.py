"""42 CFR Part 2 texts that must travel with every disclosure of SUD records.

Source: 42 CFR 2.32 "Notice and copy of consent to accompany disclosure" as amended by the
2024 final rule (89 FR 12472; compliance date 16 Feb 2026), Statement 1, as stored in
../shared/DOMAIN.md section 6.1 [S68][S67]. The stored copy quotes the statement up to the
court-order exceptions; confirm the full wording against the current eCFR before production.
"""

REDISCLOSURE_NOTICE = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules "
    "(42 CFR part 2). These rules prohibit you from using or disclosing this record, or testimony "
    "that describes the information contained in this record, in any civil, criminal, "
    "administrative, or legislative proceedings against the patient, unless authorized by the "
    "consent of the patient, except as provided at 42 CFR 2.12(c)(5) or as authorized by a court "
    "in accordance with 42 CFR 2.64 or 2.65."
)
