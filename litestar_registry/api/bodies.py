"""JSON bodies held to their schema's types.

Litestar converts a handler's ``data`` with msgspec's lax rules (``strict=False``), under which ``"60"`` is an
integer and ``0`` a timestamp (1970): a body that the OpenAPI document calls invalid was accepted. Each handler that
takes a body calls :func:`held_to_schema` first, after its credential was checked (Litestar resolves dependencies
before it validates, and an anonymous caller gets its 401 before any word about its body): the raw body is decoded
again, strictly, into the type ``data`` has. What passes converts the same either way; what fails is refused (422) in
Litestar's own error shape, so each dialect words it as it words every other invalid field. One strict failure is not
one: a float where an integer is expected, which Litestar converted only because it was integral (``1.0``), as JSON
Schema counts it an integer too (the strict decode stops at it, so a later field goes unchecked then).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

__all__ = ("held_to_schema",)

_AT = " - at `$"
_INTEGRAL = "Expected `int`, got `float`"
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


async def held_to_schema(request: Request[Any, Any, Any], data: msgspec.Struct) -> None:
    """Refuse (422) the request's JSON body if a value of it has a type its schema does not allow.

    ``data`` is what Litestar made of the body; its type is the schema. A body that is not JSON at all, or nested too
    deep, was answered by Litestar before the handler ran.
    """
    kind = type(data)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind, strict=True)
    try:
        decoder.decode(await request.body())
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(_AT)
        if message.startswith(_INTEGRAL):
            return  # 1.0 is an integer to JSON Schema too; Litestar took it because it was integral
        raise ValidationException(
            f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": message, "key": path.rstrip("`").lstrip(".") or "data", "source": "body"}],
        ) from None
