"""The registry's part of the host's OpenAPI document: its security schemes, closed bodies and configured bounds.

Route handlers declare which key they take (``security=``) and their error bodies; what depends on the host's
configuration (public reads, an open TTL dialect, the TTL bounds) is set here when the plugin mounts the routes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Router
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Components, OpenAPIType, Reference, Schema, SecurityRequirement, SecurityScheme
from litestar.typing import FieldDefinition

from litestar_registry.core.validation import NO_NUL_PATTERN

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.config.app import AppConfig

__all__ = (
    "ADMIN_KEY",
    "ANY_KEY",
    "READ",
    "TTL_KEY",
    "RegistrySchemaPlugin",
    "document_registry",
    "secure",
)

SERVICE_SCHEME = "RegistryServiceKey"
ADMIN_SCHEME = "RegistryAdminKey"
TTL_SCHEME = "RegistryTtlKey"
SECURITY_SCHEMES = {
    SERVICE_SCHEME: SecurityScheme(
        type="http", scheme="bearer", description="A service account's key: `Authorization: Bearer <key>`."
    ),
    ADMIN_SCHEME: SecurityScheme(
        type="http", scheme="bearer", description="An admin account's key: `Authorization: Bearer <key>`."
    ),
    TTL_SCHEME: SecurityScheme(
        type="apiKey",
        name="X-Service-Key",
        security_scheme_in="header",
        description="The TTL dialect's registration key (seed 004): missing answers 422, wrong 401.",
    ),
}

ANY_KEY: list[SecurityRequirement] = [{SERVICE_SCHEME: []}, {ADMIN_SCHEME: []}]
"""The registry dialect's routes: a service or an admin key."""
ADMIN_KEY: list[SecurityRequirement] = [{ADMIN_SCHEME: []}]
"""The admin routes."""
TTL_KEY: list[SecurityRequirement] = [{TTL_SCHEME: []}]
"""The TTL dialect's writes, when a key is configured."""
READ = {"registry_access": "read"}
"""``opt`` of the read routes, which take no key when the host sets ``public_reads``."""
WRITE = {"registry_access": "write"}
"""``opt`` of the routes whose key the configuration may waive (the TTL dialect's writes)."""


def _handlers(router: Router) -> Iterator[HTTPRouteHandler]:
    for route in router.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler):
                yield handler


def secure(router: Router, opt: dict[str, str], security: list[SecurityRequirement]) -> None:
    """Document ``security`` on every handler of ``router`` whose ``opt`` includes ``opt``."""
    for handler in _handlers(router):
        if opt.items() <= handler.opt.items():
            handler.security = security


class RegistryJsonValue:
    """Names the component that describes free-form JSON (``metadata``, the unknown fields of TTL ``info``)."""


def _json_value(schema_creator: SchemaCreator) -> Reference:
    """A reference to the free-form JSON component, which is made (recursive) on first use."""
    registry = schema_creator.schema_registry
    field = FieldDefinition.from_annotation(RegistryJsonValue)
    if (found := registry.get_reference_for_field_definition(field)) is not None:
        return found
    schema = registry.get_schema_for_field_definition(field)
    schema.title = "RegistryJsonValue"
    schema.description = "Free-form JSON as every store keeps it: no text with U+0000, integers within 64 bits."
    schema.any_of = [
        Schema(type=OpenAPIType.STRING, pattern=NO_NUL_PATTERN),
        Schema(type=OpenAPIType.INTEGER, minimum=-(2**63), maximum=2**63 - 1),
        # Not "integer" alone: a float as large as 1e300 is a JSON number every store keeps (as a float).
        Schema(type=OpenAPIType.NUMBER),
        Schema(type=OpenAPIType.BOOLEAN),
        Schema(type=OpenAPIType.NULL),
        Schema(type=OpenAPIType.ARRAY, items=_json_value(schema_creator)),
        Schema(
            type=OpenAPIType.OBJECT,
            property_names=Schema(pattern=NO_NUL_PATTERN),
            additional_properties=_json_value(schema_creator),
        ),
    ]
    return _json_value(schema_creator)


class RegistrySchemaPlugin(StructSchemaPlugin):
    """Litestar's schema of a msgspec Struct, completed for the registry's own Structs (the host's are left alone).

    It adds ``additionalProperties: false`` where a Struct refuses unknown fields, the constraints Litestar leaves
    out (bounds of zero, those of list items and map keys and values), and the configured TTL bounds on request
    bodies.
    """

    def __init__(
        self,
        *,
        ttl_bounds: tuple[float, float],
        requests: tuple[type[msgspec.Struct], ...],
        open_structs: tuple[type[msgspec.Struct], ...],
    ) -> None:
        self.ttl_bounds = ttl_bounds
        self.requests = requests
        self.open_structs = open_structs

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        """Only the registry's Structs."""
        module = getattr(field_definition.type_, "__module__", "")
        return module.startswith("litestar_registry.") and super().is_plugin_supported_field(field_definition)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        """Litestar's schema, completed."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        struct = field_definition.origin or field_definition.type_  # a generic Struct's own class
        if struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        elif struct in self.open_structs:
            schema.additional_properties = _json_value(schema_creator)
            schema.property_names = Schema(pattern=NO_NUL_PATTERN)
        info = msgspec.inspect.type_info(field_definition.type_)
        assert isinstance(info, msgspec.inspect.StructType)
        for field in info.fields:
            target = (schema.properties or {}).get(field.encode_name)
            if isinstance(target, Schema):
                _complete(field.type, target, lambda: _json_value(schema_creator))
        if struct in self.requests and isinstance(ttl := (schema.properties or {}).get("ttl_seconds"), Schema):
            ttl.exclusive_minimum = None
            ttl.minimum, ttl.maximum = self.ttl_bounds
        return schema


def _complete(kind: Any, schema: Schema, json_value: Callable[[], Reference]) -> None:
    """Put the constraints of a msgspec type on its schema where Litestar left them out.

    Litestar drops bounds of zero (``ge=0``: falsy) and the constraints of the items of a list or map. Constraints of
    an optional value sit beside its ``oneOf``, as Litestar puts them: they apply to that value's type only.
    """
    inspect = msgspec.inspect
    if isinstance(kind, inspect.UnionType):
        values = [t for t in kind.types if not isinstance(t, inspect.NoneType)]
        if len(values) != 1:
            return
        kind = values[0]
    if isinstance(kind, inspect.Metadata):
        kind = kind.type
    if isinstance(kind, inspect.IntType | inspect.FloatType):
        for name, key in (
            ("ge", "minimum"),
            ("gt", "exclusive_minimum"),
            ("le", "maximum"),
            ("lt", "exclusive_maximum"),
        ):
            if getattr(kind, name) is not None and getattr(schema, key) is None:
                setattr(schema, key, getattr(kind, name))
    elif isinstance(kind, inspect.StrType):
        for name, key in (("min_length", "min_length"), ("max_length", "max_length"), ("pattern", "pattern")):
            if getattr(kind, name) is not None and getattr(schema, key) is None:
                setattr(schema, key, getattr(kind, name))
    elif isinstance(kind, inspect.ListType | inspect.SetType | inspect.FrozenSetType | inspect.VarTupleType):
        schema.min_items = schema.min_items if kind.min_length is None else kind.min_length
        schema.max_items = schema.max_items if kind.max_length is None else kind.max_length
        if isinstance(schema.items, Schema):
            _complete(kind.item_type, schema.items, json_value)
    elif isinstance(kind, inspect.DictType):
        schema.min_properties = schema.min_properties if kind.min_length is None else kind.min_length
        schema.max_properties = schema.max_properties if kind.max_length is None else kind.max_length
        names = Schema()
        _complete(kind.key_type, names, json_value)
        if names != Schema():
            schema.property_names = names
        if isinstance(kind.value_type, inspect.AnyType):
            schema.additional_properties = json_value()
        elif isinstance(schema.additional_properties, Schema):
            _complete(kind.value_type, schema.additional_properties, json_value)


def document_registry(app_config: AppConfig, *, public_reads: bool, ttl_bounds: tuple[float, float]) -> None:
    """Add the registry's security schemes and schema plugin to the app; reads take no key with ``public_reads``.

    Call it from ``on_app_init`` once the registry's Routers are in ``app_config.route_handlers``.
    """
    from litestar_registry.api.schemas import RegistrationRequest
    from litestar_registry.api.ttl_dialect import ModelMetadata, RegisterRequest, ServiceInfo

    if public_reads:
        for router in app_config.route_handlers:
            if isinstance(router, Router):
                secure(router, READ, [{}, *ANY_KEY])
    plugin = RegistrySchemaPlugin(
        ttl_bounds=ttl_bounds,
        requests=(RegistrationRequest, RegisterRequest),
        open_structs=(ServiceInfo, ModelMetadata),
    )
    plugins = app_config.plugins
    # Before Litestar's own Struct plugin (which would answer first), and after this plugin's place in the list,
    # which Litestar is iterating over while it calls each plugin's ``on_app_init``.
    at = next((i for i, p in enumerate(plugins) if type(p) is StructSchemaPlugin), len(plugins))
    plugins.insert(at, plugin)
    add_security_schemes(app_config, SECURITY_SCHEMES)


def add_security_schemes(app_config: AppConfig, schemes: Mapping[str, SecurityScheme]) -> None:
    """Add ``schemes`` to the components of the app's OpenAPI document.

    The app gets a copy of its OpenAPI config: an app built without a config of its own shares Litestar's default
    instance, which must stay as it is for every other app in the process.
    """
    openapi = app_config.openapi_config
    if openapi is not None:
        present = openapi.components if isinstance(openapi.components, list) else [openapi.components]
        copied = copy.copy(openapi)
        copied.components = [*present, Components(security_schemes=dict(schemes))]
        app_config.openapi_config = copied
