"""Deletion with a human in the loop: a dry-run manifest, an Airflow approval, then Preservica's two steps."""
