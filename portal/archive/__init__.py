"""Pages over the archive (above services): downloads and per-patient extracts of archived
documents (``downloads``), and in-portal verification of one chain entry (``verification``).

The PDF renderers these pages and the services use live below services, in ``portal.documents``.
"""
