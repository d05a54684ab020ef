"""HTML -> PDF rendering of archived documents (WeasyPrint), from plain data only."""
