"""Ingest: package a source, skip what Preservica already holds, upload, wait, report."""
