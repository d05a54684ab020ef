"""HTML -> PDF rendering of archived documents (WeasyPrint), from plain data only.

Renderers sit below services: services call them, they import no Flask, no services and no
views. The pages that serve archived documents live above, in ``portal.archive``.
"""
