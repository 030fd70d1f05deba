"""Small helpers shared by the provider and the sandbox (no HTTP, no Airflow)."""
