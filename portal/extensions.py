"""Extension singletons, bound to an app in ``create_app`` (Flask tutorial's init_app pattern)."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
# Only sign-in is limited (guessing passwords). Storage comes from RATELIMIT_STORAGE_URI (the
# app config, from the environment; ``memory://`` counts per process): with several gunicorn
# workers set it to shared storage such as ``redis://127.0.0.1:6379`` (docs/operations.md).
limiter = Limiter(get_remote_address, default_limits=[])
