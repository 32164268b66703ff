"""A host app that mounts litestar-registry with the embedded default (a SQLite file): ``python -m example_app``."""
