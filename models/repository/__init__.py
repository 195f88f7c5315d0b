"""SQL in one place: a module per aggregate, each a set of functions over a caller's ``Session``
(the FastAPI template's repository style). Nothing here opens a session, commits or reads settings:
the use-case functions in ``dcoflow.tasks`` do, and tables and pure rules stay in ``dcoflow.models``.

Modules: ``operation`` (DCOs, their audit trail and transitions), ``stix_store`` (STIX objects by
version, random SCO ids per natural key); the others are named for the aggregate they store.
"""
