"""Wire the web layer: blueprints, request hooks, template globals."""
from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    from portal import access_control, access_log
    from portal.errors import register_error_handlers
    from portal.home import bp as home_bp
    from portal.rosters import bp as rosters_bp

    for bp in (home_bp, rosters_bp):
        app.register_blueprint(bp)
    for module, name in (("portal.readiness.views", "bp"), ("portal.documents.views", "bp"),
                         ("portal.census.views", "bp"), ("portal.billing.views", "bp")):
        try:
            mod = __import__(module, fromlist=[name])
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that job's package is not built yet
            raise
        app.register_blueprint(getattr(mod, name))

    app.before_request(access_control.enforce)
    app.after_request(access_log.log_access)

    @app.after_request
    def _vary(response):
        # Full page and fragment share a URL; caches must key on the htmx header.
        response.headers.add("Vary", "HX-Request")
        return response

    app.jinja_env.globals["has_endpoint"] = lambda endpoint: endpoint in app.view_functions
    register_error_handlers(app)
    access_control.check_policies(app)
