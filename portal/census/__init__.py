"""Census import: read the EHR census export and create patients, enrollments and authorizations.

``parse`` checks the file (pure), ``importer`` compares with the database and writes,
``views`` is the upload page for admin and billing, ``commands`` the ``flask census`` CLI.
"""
