"""WSGI entry point: `gunicorn wsgi:app` (or any WSGI server) imports ``app`` from here."""
from portal import create_app

app = create_app()
