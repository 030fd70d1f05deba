"""Preservica changes as Airflow input: a cursor over the changed-entities feed that loses nothing.

``window`` reads one window of the feed (overlapping the last one, deduped, filtered to a collection
and entity types); ``cursor_store`` keeps the cursor durably (asset state store on Airflow 3.3, an
Airflow Variable before). The watcher trigger (``triggers.changes``) and the task-side operator
(``operators.changes``) both use them.
"""
