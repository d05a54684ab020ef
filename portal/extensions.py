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
# Only sign-in is limited (guessing passwords); storage is per process, which suits the one
# server a clinic runs. Set RATELIMIT_STORAGE_URI (e.g. redis://) for several workers.
limiter = Limiter(get_remote_address, storage_uri="memory://", default_limits=[])
