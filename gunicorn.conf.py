"""gunicorn settings for the portal (docs/operations.md): `gunicorn -c gunicorn.conf.py wsgi:app`.

Every value can be overridden from the environment or the command line."""
import multiprocessing
import os

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8000")  # the TLS proxy forwards here
# PDF rendering is CPU-bound: about one worker per core (plus one), at least 2.
workers = int(os.environ.get("PORTAL_WORKERS", max(2, multiprocessing.cpu_count() + 1)))
threads = int(os.environ.get("PORTAL_THREADS", "2"))
# A roster close renders and archives a PDF; allow it time, but not forever.
timeout = int(os.environ.get("PORTAL_WORKER_TIMEOUT", "120"))
graceful_timeout = 30
# Recycle workers now and then (bounded memory from WeasyPrint's caches).
max_requests = 2000
max_requests_jitter = 200
# Only the local TLS proxy may set X-Forwarded-*; the portal's ProxyFix reads them
# (PORTAL_TRUSTED_PROXIES=1).
forwarded_allow_ips = os.environ.get("PORTAL_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("PORTAL_ACCESS_LOG", "-")  # paths and status only; no bodies, no PHI
errorlog = "-"
# The portal sets the process umask so nothing it writes is readable by other users.
umask = 0o077
