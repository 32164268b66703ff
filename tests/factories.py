"""polyfactory factories for the registry dialect's request bodies (seed 000): valid by construction, small, seeded.

polyfactory reads the ``msgspec.Meta`` constraints of :mod:`litestar_registry.api.schemas` and honours most of them:
string lengths (``version``, ``instance_id``), ``ge`` (``uptime_seconds``), enums (``status``), optional fields. Those
fields are left to it. The fields overridden below are those where it cannot honour a constraint or where what it makes
is useless here, each with the reason beside it. The limitations of polyfactory 3.5 behind them:

* a ``pattern`` together with ``max_length`` is generated from the regex and then cut at ``max_length``, which can
  leave a trailing hyphen: about one slug in 150 breaks the pattern it was generated from;
* a collection with ``max_length`` but no ``min_length`` always gets exactly ``max_length`` items (the minimum defaults
  to the maximum): every list and map here would hold 100 entries, and a registration would be ~180 kB, far beyond the
  registry's 64 kB body limit, and never empty;
* strings are ASCII hex, so no unicode would ever reach a store;
* a constraint the schema does not state cannot be honoured: ``ttl_seconds`` is only ``gt=0`` in the schema, while
  the registry accepts 1 to 86 400 seconds (``RegistryConfig``'s defaults) and answers 422 outside.

Every generator draws from its factory's own ``__random__``; :func:`reseed` resets all of them (and polyfactory's
shared Faker), so each test sees the same payloads on every backend and every run.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from random import Random
from typing import Any, TypeVar

import msgspec
from polyfactory.factories.msgspec_factory import MsgspecFactory

from litestar_registry.api.schemas import EntrypointIn, HealthStatus, HeartbeatRequest, OwnerIn, RegistrationRequest
from litestar_registry.core.validation import SLUG_MAX_LENGTH

SEED = 20_260_101
MIN_TTL_SECONDS, MAX_TTL_SECONDS = 1.0, 86_400.0
"""The TTL bounds of a default ``RegistryConfig``, which the harness uses."""

T = TypeVar("T")

# Realistic vocabularies, with non-ASCII entries so that every store has to round-trip unicode (accents, CJK,
# Cyrillic, an emoji outside the BMP, a combining accent).
WORDS = (
    "billing", "search", "ledger", "orders", "invoices", "API", "gateway", "v2", "internal", "fast",
    "Zürich", "café", "naïve", "日本語", "данные", "🚀", "e\u0301te\u0301", "Ωmega",
)  # fmt: skip
LABELS = ("core", "edge", "finance", "search", "eu", "us-east", "beta", "gpu", "pci", "données", "日本")
CAPABILITIES = ("invoicing", "search", "indexing", "payments", "auth", "reporting", "ocr", "export")
PROTOCOLS = ("http", "https", "grpc", "ws", "amqp", "graphql")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
META_KEYS = ("team", "tier", "region", "owner_id", "replicas", "public", "features", "limits", "région", "ключ")
CHECK_NAMES = ("db", "cache", "queue", "disk", "upstream", "dns", "tls", "schéma")
METRIC_NAMES = ("rps", "p99_ms", "errors", "cpu", "memory_mb", "queue_depth", "latency_µs")
INT64_MAX = 2**63 - 1


def choose_some(rng: Random, pool: tuple[str, ...], most: int) -> list[str]:
    """Up to ``most`` entries of ``pool``, repeats allowed (the schema allows them, so stores must keep them)."""
    return rng.choices(pool, k=rng.randint(0, most))


def make_slug(rng: Random) -> str:
    """A slug matching ``^[a-z][a-z0-9]*(-[a-z0-9]+)*$``: short, medium, or exactly the 63-character maximum.

    A hyphen is only ever written together with the character after it, so the slug never ends in one and never has
    two in a row (polyfactory's own attempt can end in a hyphen, see the module docstring).
    """
    length = rng.choice((rng.randint(1, 12), rng.randint(13, 40), SLUG_MAX_LENGTH))
    alphanumeric = string.ascii_lowercase + string.digits
    slug = rng.choice(string.ascii_lowercase)
    while len(slug) < length:
        if len(slug) + 2 <= length and rng.random() < 0.2:
            slug += "-" + rng.choice(alphanumeric)
        else:
            slug += rng.choice(alphanumeric)
    return slug


def make_text(rng: Random, max_length: int, min_length: int = 0) -> str:
    """Words (some of them non-ASCII), and now and then exactly ``max_length`` code points, the schema's limit."""
    words = " ".join(rng.choices(WORDS, k=rng.randint(max(min_length, 1), 6)))
    if rng.random() < 0.15:
        return (words + " " + "ü" * max_length)[:max_length]  # at the limit, cut inside the padding
    return words[:max_length]


def make_url(rng: Random, scheme: str = "http") -> str:
    host = rng.choice(("billing", "search.internal", "10.0.3.7", "api.example.com", "xn--caf-dma.example"))
    path = "/".join(rng.choices(("api", "v1", "health", "docs", "événements", "rpc"), k=rng.randint(0, 3)))
    return f"{scheme}://{host}:{rng.randint(1, 65_535)}/{path}"


def maybe(rng: Random, make: Callable[[], T]) -> T | None:
    return None if rng.random() < 0.3 else make()


def make_json(rng: Random, depth: int = 0) -> dict[str, Any]:
    """Small, JSON-safe metadata: strings, int64 ints, bools, nulls, floats of any magnitude (exponent forms such as
    ``1e300`` included: PostgreSQL keeps them as sent), short lists and nested dicts (two levels).

    What no backend can store (NUL in text, ints beyond 64 bits, NaN) is refused with a 422, which
    ``test_values_no_backend_can_store_are_422_and_change_nothing`` covers instead.
    """
    scalars: list[Callable[[], Any]] = [
        lambda: make_text(rng, 40),
        lambda: rng.randint(-1_000_000, 1_000_000),
        lambda: rng.choice((0, 1, -1, INT64_MAX, -INT64_MAX - 1)),
        lambda: rng.choice((True, False)),
        lambda: None,
        lambda: round(rng.uniform(-1e6, 1e6), 3),
        lambda: rng.choice((1e16, 1e300, -2.5e-10, 5e-324, 1.7976931348623157e308)),
    ]
    makers = [*scalars, lambda: [rng.choice(scalars)() for _ in range(rng.randint(0, 3))]]
    if depth < 2:
        makers.append(lambda: make_json(rng, depth + 1))
    return {key: rng.choice(makers)() for key in rng.sample(META_KEYS, rng.randint(0, 5 if depth == 0 else 3))}


class EntrypointInFactory(MsgspecFactory[EntrypointIn]):
    __random_seed__ = SEED

    @classmethod
    def name(cls) -> str:  # realistic labels instead of 1-100 hex characters
        return cls.__random__.choice(("api", "events", "admin", "metrics", "grpc", "ws", "public-api", "интерфейс"))

    @classmethod
    def url(cls) -> str:
        return make_url(cls.__random__, cls.__random__.choice(("http", "https", "grpc", "ws")))

    @classmethod
    def protocol(cls) -> str:  # polyfactory would never produce the default "http"; omission is tested in to_body
        return cls.__random__.choice(PROTOCOLS)

    @classmethod
    def method(cls) -> str | None:
        return maybe(cls.__random__, lambda: cls.__random__.choice(METHODS))

    @classmethod
    def description(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_text(cls.__random__, 2_000))


class OwnerInFactory(MsgspecFactory[OwnerIn]):
    __random_seed__ = SEED

    @classmethod
    def name(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_text(cls.__random__, 200, min_length=1))

    @classmethod
    def email(cls) -> str | None:
        return maybe(cls.__random__, lambda: f"{cls.__random__.choice(('ann', 'ops', 'zoë'))}@example.com")

    @classmethod
    def url(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_url(cls.__random__, "https"))


class RegistrationRequestFactory(MsgspecFactory[RegistrationRequest]):
    """A valid registration; ``version`` is polyfactory's own (1-64 characters, as the schema says)."""

    __random_seed__ = SEED

    @classmethod
    def slug(cls) -> str:  # polyfactory's regex-then-truncate can end a slug in "-"
        return make_slug(cls.__random__)

    @classmethod
    def name(cls) -> str:
        return make_text(cls.__random__, 200, min_length=1)

    @classmethod
    def description(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_text(cls.__random__, 2_000))

    @classmethod
    def base_url(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_url(cls.__random__))

    @classmethod
    def health_url(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_url(cls.__random__) + "/health")

    @classmethod
    def documentation_url(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_url(cls.__random__, "https"))

    @classmethod
    def endpoints(cls) -> list[EntrypointIn]:  # polyfactory would always make 100 (max_length without min_length)
        return EntrypointInFactory.batch(cls.__random__.randint(0, 4))

    @classmethod
    def capabilities(cls) -> list[str]:  # same: always 100 otherwise
        return choose_some(cls.__random__, CAPABILITIES, 4)

    @classmethod
    def tags(cls) -> list[str]:  # same: always 100 otherwise
        return choose_some(cls.__random__, LABELS, 4)

    @classmethod
    def metadata(cls) -> dict[str, Any]:  # dict[str, Any]: polyfactory would make 100 random-string entries
        return make_json(cls.__random__)

    @classmethod
    def owner(cls) -> OwnerIn | None:
        return maybe(cls.__random__, OwnerInFactory.build)

    @classmethod
    def ttl_seconds(cls) -> float | None:
        """Within the registry's bounds (not in the schema); an int now and then, which must come back as a float."""
        rng = cls.__random__
        return maybe(
            rng,
            lambda: rng.choice(
                (
                    rng.randint(int(MIN_TTL_SECONDS), 120),
                    round(rng.uniform(MIN_TTL_SECONDS, 60), rng.randint(1, 6)),
                    rng.uniform(MIN_TTL_SECONDS, MAX_TTL_SECONDS),
                    MIN_TTL_SECONDS,
                    MAX_TTL_SECONDS,
                )
            ),
        )


class HeartbeatRequestFactory(MsgspecFactory[HeartbeatRequest]):
    """A valid heartbeat; ``status``, ``version``, ``uptime_seconds`` and ``instance_id`` are polyfactory's own."""

    __random_seed__ = SEED

    @classmethod
    def slug(cls) -> str:  # see RegistrationRequestFactory.slug; tests usually pass the slug they registered
        return make_slug(cls.__random__)

    @classmethod
    def message(cls) -> str | None:
        return maybe(cls.__random__, lambda: make_text(cls.__random__, 2_000))

    @classmethod
    def checks(cls) -> dict[str, HealthStatus]:  # polyfactory would always make 100 (max_length without min_length)
        rng = cls.__random__
        return {name: rng.choice(list(HealthStatus)) for name in rng.sample(CHECK_NAMES, rng.randint(0, 4))}

    @classmethod
    def metrics(cls) -> dict[str, float]:  # same; ints now and then, which the registry must keep as floats
        rng = cls.__random__
        values: tuple[Callable[[], float], ...] = (
            lambda: round(rng.uniform(0, 10_000), 3),
            lambda: rng.randint(0, 1_000),
            lambda: rng.uniform(-1, 1),
        )
        return {name: rng.choice(values)() for name in rng.sample(METRIC_NAMES, rng.randint(0, 4))}

    @classmethod
    def timestamp(cls) -> datetime | None:
        """Around the harness clock, naive or with any UTC offset (polyfactory's Faker makes naive datetimes of any
        century); the registry keeps it in UTC."""
        rng = cls.__random__
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(-(10**9), 10**9))
        offset = timezone(timedelta(minutes=rng.choice((-300, -210, 0, 60, 120, 330, 765))))
        return maybe(rng, lambda: rng.choice((at, at.replace(tzinfo=None), at.astimezone(offset))))


FACTORIES = (EntrypointInFactory, OwnerInFactory, RegistrationRequestFactory, HeartbeatRequestFactory)


def reseed(seed: int = SEED) -> None:
    """Reset every factory's random generator (and polyfactory's shared Faker) to ``seed``."""
    for factory in FACTORIES:
        factory.seed_random(seed)


def distinct_registrations(count: int) -> list[RegistrationRequest]:
    """``count`` registrations with pairwise different slugs."""
    found: dict[str, RegistrationRequest] = {}
    while len(found) < count:
        request = RegistrationRequestFactory.build()
        found.setdefault(request.slug, request)
    return list(found.values())


def _is_default(field: msgspec.structs.FieldInfo, value: Any) -> bool:
    if field.default is not msgspec.NODEFAULT:
        return bool(value == field.default)
    if field.default_factory is not msgspec.NODEFAULT:
        return bool(value == field.default_factory())
    return False


def to_body(value: Any, rng: Random) -> Any:
    """The JSON body a client would send for ``value``: a field holding its default is left out half of the time.

    The server must then fill in the same default, so the expected result is still ``msgspec.to_builtins(value)``.
    """
    if isinstance(value, msgspec.Struct):
        return {
            field.encode_name: to_body(getattr(value, field.name), rng)
            for field in msgspec.structs.fields(value)
            if not (_is_default(field, getattr(value, field.name)) and rng.random() < 0.5)
        }
    if isinstance(value, list):
        return [to_body(item, rng) for item in value]
    return msgspec.to_builtins(value)
