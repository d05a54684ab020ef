"""Wire the web layer: blueprints, request hooks, template globals."""
from __future__ import annotations

from flask import Flask
from portal.wording import count_noun


def register_web(app: Flask) -> None:
    from portal import access_control, access_log
    from portal.accounts import bp as accounts_bp
    from portal.admin import bp as admin_bp
    from portal.auditors.views import bp as auditors_bp
    from portal.authorizations import bp as authorizations_bp
    from portal.billing.views import bp as billing_bp
    from portal.census.views import bp as census_bp
    from portal.archive.downloads import bp as documents_bp
    from portal.errors import register_error_handlers
    from portal.home import bp as home_bp
    from portal.notes import bp as notes_bp
    from portal.no_shows.views import bp as no_shows_bp
    from portal.readiness.views import bp as readiness_bp
    from portal.rosters import bp as rosters_bp
    from portal.archive.verification import bp as verification_bp
    from portal.audit_files.views import bp as audit_files_bp

    for bp in (home_bp, rosters_bp, readiness_bp, documents_bp, census_bp, verification_bp,
               billing_bp, accounts_bp, admin_bp, authorizations_bp, notes_bp, no_shows_bp,
               auditors_bp, audit_files_bp):
        app.register_blueprint(bp)

    app.before_request(access_control.enforce)
    from portal.form_guard import refuse_invisible_characters

    app.before_request(refuse_invisible_characters)
    app.after_request(access_log.log_access)
    from portal.security_headers import add_security_headers

    app.after_request(add_security_headers)

    @app.after_request
    def _vary(response):
        # Full page and fragment share a URL; caches must key on the htmx header.
        response.headers.add("Vary", "HX-Request")
        return response

    app.jinja_env.globals["has_endpoint"] = lambda endpoint: endpoint in app.view_functions
    from portal.clock import fmt_when

    # {{ instant | when(tz) }}: the time alone when it is today, else with its date.
    app.jinja_env.filters["when"] = fmt_when
    app.jinja_env.filters["count_noun"] = count_noun  # {{ n | count_noun("day") }}: 1 day, 2 days
    register_error_handlers(app)
    access_control.check_policies(app)
