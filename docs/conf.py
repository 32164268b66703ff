"""Sphinx configuration of the litestar-registry documentation.

Facts about the code (defaults, environment variables, the state table, problem codes) are read from the package at
build time, never copied by hand: see ``_ext/registry_docs.py`` and ``myst_substitutions`` below.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package, also from a checkout that did not install it
sys.path.insert(0, str(DOCS / "_ext"))

from litestar_registry.config import RegistryConfig  # noqa: E402

_project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

project = "litestar-registry"
author = "litestar-registry developers"
copyright = "litestar-registry developers"
release = version = _project["version"]

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_click",
    "myst_parser",
    "registry_docs",
    "events_docs",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# --- MyST --------------------------------------------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3

_defaults = RegistryConfig()
myst_substitutions = {
    "default_ttl": f"{_defaults.default_ttl_seconds:g}",
    "min_ttl": f"{_defaults.min_ttl_seconds:g}",
    "max_ttl": f"{_defaults.max_ttl_seconds:g}",
    "expiry_windows": str(_defaults.expiry_windows),
    "expiry_seconds": f"{_defaults.default_ttl_seconds * _defaults.expiry_windows:g}",
    "sweep_interval": f"{_defaults.sweep_interval_seconds:g}",
    "sweep_batch": str(_defaults.sweep_batch_size),
    "max_body_bytes": str(_defaults.max_body_bytes),
    "default_page_size": str(_defaults.default_page_size),
    "max_page_size": str(_defaults.max_page_size),
    "default_store_url": _defaults.store_url,
    "default_path": _defaults.path,
    "default_ttl_path": _defaults.ttl_path,
    "ttl_account": _defaults.ttl_account,
    "ttl_expiry_windows": str(_defaults.ttl_expiry_windows),
    "events_retention_days": f"{_defaults.events_retention_seconds / 86_400:g}",
    "events_retention_count": f"{_defaults.events_retention_count:,}",
    "feed_poll_interval": f"{_defaults.feed_poll_interval_seconds:g}",
    "feed_ping_interval": f"{_defaults.feed_ping_interval_seconds:g}",
    "feed_max_wait": f"{_defaults.feed_max_wait_seconds:g}",
}
"""Defaults quoted in the prose, as ``{{ name }}``: read from ``RegistryConfig()`` so that they cannot go stale."""

# --- autodoc and napoleon ----------------------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Only for nitpicky (-n) builds: names from other projects, which we do not link without intersphinx (intersphinx
# would fetch inventories over the network during every build, and a failed fetch is a warning under -W).
nitpick_ignore_regex = [
    ("py:.*", r"(litestar|advanced_alchemy|msgspec|click|collections|typing|types|datetime|asyncio)(\..*)?"),
    ("py:.*", r"(Self|Any|Awaitable|Callable|Mapping|Sequence|TracebackType|datetime|timedelta)"),
    ("py:.*", r"(Litestar|AppConfig|Group|Guard|SQLAlchemyAsyncConfig|Router)"),
    # Annotations that autodoc cannot evaluate (imported only for type checking) come through as raw strings.
    ("py:class", r"((dict|tuple|list|frozenset|Mapping)\[.*|DependentsCheck)"),
]

# --- HTML --------------------------------------------------------------------------------------------------------

html_theme = "shibuya"
html_title = "litestar-registry"
html_static_path: list[str] = []
html_theme_options = {
    "accent_color": "teal",
    "nav_links": [
        {"title": "Quickstart", "url": "quickstart"},
        {"title": "Run the example", "url": "example"},
        {"title": "API", "url": "api"},
    ],
}
