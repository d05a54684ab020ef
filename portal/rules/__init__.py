"""Pure domain rules for IOP billing and audit readiness.

No Flask, no SQLAlchemy, no database: every function here takes plain frozen dataclasses
(``portal.rules.facts``) and payer rule data (``portal.rules.payer_rules``) and returns plain
results. Import the submodule you need; this package imports nothing on purpose so that
``import portal.rules`` stays cheap.
"""
