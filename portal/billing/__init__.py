"""Billing: the daily reconciliation board, payer rules page, claim-line CSV and 837P exports.

The blueprint ``bp`` lives in ``portal.billing.views`` (registered by ``portal.web``); views parse
input, call ``portal.services.reconciliation`` or the pure rules, and pick page or partial.
"""
