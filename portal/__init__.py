"""IOP Audit Portal: Flask application factory (the Flask tutorial's ``create_app`` shape).

Flask is imported inside the factory so that ``portal.rules`` (pure domain logic) can be
imported without loading the web framework.
"""
from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict | None = None) -> "Flask":
    """Build the app. ``config`` overrides the environment-derived settings (tests use it)."""
    from flask import Flask

    from portal.config import instance_dir, load_config

    app = Flask(
        __name__,
        instance_path=instance_dir(),
        instance_relative_config=True,
        template_folder=str(Path(__file__).resolve().parent.parent / "templates"),
    )
    instance = Path(app.instance_path)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if instance.stat().st_mode & 0o077:
            instance.chmod(0o700)  # it holds the database, the archive and the keys (PHI)
    except PermissionError:
        pass  # not ours: the operator chose its permissions

    from portal.routing import BoundedInt

    app.url_map.converters["int"] = BoundedInt  # before any route is added

    app.config.update(load_config(app.instance_path))
    if config:
        app.config.update(config)

    from portal.rules.payer_rules import load_all

    # Payer rule files are validated at start-up: a bad file stops the app with a message
    # naming the file and key, rather than misjudging claims later.
    app.extensions["rulebook"] = load_all(app.config.get("PORTAL_RULES_DIR"))

    from portal.extensions import csrf, db, htmx, limiter, login_manager, migrate
    from portal.database import configure_engine

    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    import_module("portal.models")  # registers every table for Alembic
    from portal.auth import bp as auth_bp
    from portal.jobs import init_app as init_jobs
    from portal.web import register_web

    app.register_blueprint(auth_bp)
    init_jobs(app)  # the task queue and the jobs pages, before the access policies are checked
    register_web(app)

    from portal.cli import register_cli

    register_cli(app)

    proxies = int(app.config.get("PORTAL_TRUSTED_PROXIES") or 0)
    if proxies:
        # Behind a TLS proxy: believe X-Forwarded-For/-Proto/-Host from that many proxies only
        # (the client address feeds the sign-in limits and the access log; the scheme, HSTS).
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    return app
