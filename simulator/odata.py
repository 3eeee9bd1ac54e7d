"""OData query options of list requests: $filter parsing and compilation, $top/$select/$count rules, skip tokens.

The parser produces a small AST; `needs_advanced()` says whether Graph would demand an advanced query
(`ConsistencyLevel: eventual` + `$count=true`) for it; `compile_filter()` turns it into a predicate over
device indexes that reads the store's typed columns. Messages say what to fix.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulator import timefmt
from simulator.devicestore import EXT_KEYS, PROFILE_FIELDS, DeviceStore, canonical_field
from simulator.wire import GraphHTTPError

BOOL, STR, DT = "Edm.Boolean", "Edm.String", "Edm.DateTimeOffset"
MAX_TOP = 999
DEFAULT_TOP = 100

# --------------------------------------------------------------------------- what devices can be filtered on


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """Operators a property supports: `basic` without advanced query, `advanced` only with it."""

    kind: str
    basic: frozenset[str]
    advanced: frozenset[str]
    collection: bool = False


def _spec(kind: str, basic: str, advanced: str, collection: bool = False) -> FilterSpec:
    return FilterSpec(kind, frozenset(basic.split()), frozenset(advanced.split()), collection)


DEVICE_FILTERS: dict[str, FilterSpec] = {
    "accountEnabled": _spec(BOOL, "eq in", "ne not null"),
    "deviceId": _spec(STR, "eq in startsWith", "ne not null"),
    "id": _spec(STR, "eq in", "ne not"),
    "displayName": _spec(STR, "eq in startsWith", "ne not null endsWith"),
    "operatingSystem": _spec(STR, "eq in startsWith", "ne not null endsWith"),
    "operatingSystemVersion": _spec(STR, "eq in startsWith", "ne not null"),
    "trustType": _spec(STR, "eq in", "ne not null"),
    "profileType": _spec(STR, "eq", "ne not in"),
    "approximateLastSignInDateTime": _spec(DT, "eq ge le", "ne not null"),
    "onPremisesLastSyncDateTime": _spec(DT, "eq ge le", "ne not null"),
    "registrationDateTime": _spec(DT, "", "eq ge le ne not null"),
    "isManaged": _spec(BOOL, "eq", "ne not null"),
    "isCompliant": _spec(BOOL, "eq", "ne not null"),
    "onPremisesSyncEnabled": _spec(BOOL, "eq", "ne not null"),
    "onPremisesSecurityIdentifier": _spec(STR, "eq", "ne not null"),
    "deviceOwnership": _spec(STR, "", "eq ne not null"),
    "enrollmentType": _spec(STR, "", "eq ne not null"),
    "managementType": _spec(STR, "", "eq ne not null"),
    "physicalIds": _spec(STR, "", "eq startsWith", collection=True),
    **{f"extensionAttributes/{key}": _spec(STR, "", "eq ne not null startsWith in") for key in EXT_KEYS},
}

# --------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # Edm.* or "null"
    value: Any


@dataclass(frozen=True, slots=True)
class Cmp:
    prop: str
    op: str  # eq ne ge le gt lt
    value: Literal


@dataclass(frozen=True, slots=True)
class In:
    prop: str
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Func:
    name: str  # startsWith | endsWith
    prop: str
    value: Literal


@dataclass(frozen=True, slots=True)
class Any_:
    prop: str  # collection property
    body: Cmp | Func  # whose prop is "$it" (the lambda variable)


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    inner: Node


type Node = Cmp | In | Func | Any_ | And | Or | Not

# --------------------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_$][\w.]*(?:/[A-Za-z_][\w.]*)*)
    | (?P<punct>[(),:])
    )""",
    re.VERBOSE,
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCS = {"startswith": "startsWith", "endswith": "endsWith"}


def _bad(message: str) -> GraphHTTPError:
    return GraphHTTPError(400, "BadRequest", f"Invalid filter clause: {message}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise _bad(f"unexpected character {text[pos]!r} at position {pos} of {text!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.i = 0
        self.var: str | None = None

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise _bad(f"unexpected end of {self.text!r}")
        self.i += 1
        return token

    def expect(self, value: str) -> None:
        token = self.take()
        if token[1] != value:
            raise _bad(f"expected {value!r} at position {token[2]}, found {token[1]!r}")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "name" and token[1].lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            token = self.peek()
            assert token is not None
            raise _bad(f"unexpected {token[1]!r} at position {token[2]}")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.keyword("and"):
            node = And(node, self.unary())
        return node

    def unary(self) -> Node:
        if self.keyword("not"):
            return Not(self.unary())
        token = self.peek()
        if token and token[1] == "(":
            self.take()
            node = self.or_expr()
            self.expect(")")
            return node
        return self.primary()

    def primary(self) -> Node:
        kind, value, at = self.take()
        if kind != "name":
            raise _bad(f"expected a property or function at position {at}, found {value!r}")
        nxt = self.peek()
        if nxt and nxt[1] == "(" and value.lower() in _FUNCS:
            self.take()
            prop = self.operand()
            self.expect(",")
            lit = self.literal()
            self.expect(")")
            return Func(_FUNCS[value.lower()], prop, lit)
        if nxt and nxt[1] == "(" and value.lower().endswith(("/any", "/all")):
            collection, _, op = value.rpartition("/")
            if op.lower() != "any":
                raise GraphHTTPError(400, "Request_UnsupportedQuery", "Only the 'any' lambda operator is supported.")
            self.take()
            var = self.take()
            self.expect(":")
            self.var = var[1]
            body = self.unary()
            self.var = None
            self.expect(")")
            if not isinstance(body, Cmp | Func) or body.prop != "$it":
                raise GraphHTTPError(
                    400,
                    "Request_UnsupportedQuery",
                    f"Unsupported lambda body in {self.text!r}; use {var[1]} eq '...' or startswith({var[1]},'...').",
                )
            return Any_(collection, body)
        prop = "$it" if self.var is not None and value == self.var else value
        if self.keyword("in"):
            self.expect("(")
            values = [self.literal()]
            while (token := self.peek()) and token[1] == ",":
                self.take()
                values.append(self.literal())
            self.expect(")")
            return In(prop, tuple(values))
        op_token = self.take()
        op = op_token[1].lower()
        if op not in _OPS:
            raise _bad(f"expected an operator (eq, ne, ge, le, in) after {value!r}, found {op_token[1]!r}")
        return Cmp(prop, op, self.literal())

    def operand(self) -> str:
        kind, value, at = self.take()
        if kind != "name":
            raise _bad(f"expected a property name at position {at}, found {value!r}")
        return "$it" if self.var is not None and value == self.var else value

    def literal(self) -> Literal:
        kind, value, at = self.take()
        if kind == "str":
            return Literal(STR, value[1:-1].replace("''", "'"))
        if kind == "dt":
            return Literal(DT, timefmt.parse(value))
        if kind == "num":
            return Literal("Edm.Int64", float(value) if "." in value else int(value))
        if kind == "name" and value.lower() in ("true", "false"):
            return Literal(BOOL, value.lower() == "true")
        if kind == "name" and value.lower() == "null":
            return Literal("null", None)
        raise _bad(f"expected a value at position {at}, found {value!r} (strings need single quotes)")


def parse_filter(text: str) -> Node:
    """Parse a $filter expression (raises GraphHTTPError 400 with the position of the problem)."""
    if not text.strip():
        raise _bad("$filter is empty")
    return _Parser(text).parse()


# --------------------------------------------------------------------------- validation


def _unsupported(prop: str, resource: str, hint: str = "") -> GraphHTTPError:
    return GraphHTTPError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{prop}' of resource '{resource}'.{hint}",
    )


_ADVANCED_HINT = " This filter needs an advanced query: send the header 'ConsistencyLevel: eventual' and $count=true."


def check_filter(node: Node, specs: Mapping[str, FilterSpec], resource: str, advanced: bool) -> Node:
    """Resolve property names, type-check literals and apply the advanced-query rules. Returns the resolved tree."""
    lower = {name.lower(): name for name in specs}

    def resolve(prop: str) -> tuple[str, FilterSpec]:
        name = lower.get(prop.lower())
        if name is None:
            raise GraphHTTPError(
                400, "BadRequest", f"Could not find a property named '{prop}' on type 'microsoft.graph.{resource.lower()}'."
            )
        return name, specs[name]

    def allow(name: str, spec: FilterSpec, op: str) -> None:
        if op in spec.basic:
            return
        if op in spec.advanced:
            if not advanced:
                raise _unsupported(name, resource, _ADVANCED_HINT)
            return
        raise _unsupported(name, resource, f" Operator '{op}' is not supported on it.")

    def typecheck(name: str, spec: FilterSpec, lit: Literal, op: str) -> None:
        if lit.kind == "null":
            allow(name, spec, "null")
        elif lit.kind != spec.kind:
            raise GraphHTTPError(
                400,
                "BadRequest",
                f"A binary operator with incompatible types was detected. Found operand types '{spec.kind}' and "
                f"'{lit.kind}' for operator kind '{op}' (property '{name}').",
            )

    def walk(node: Node) -> Node:
        match node:
            case And(left, right):
                return And(walk(left), walk(right))
            case Or(left, right):
                return Or(walk(left), walk(right))
            case Not(inner):
                if not advanced:
                    raise GraphHTTPError(
                        400, "Request_UnsupportedQuery", f"The 'not' operator needs an advanced query.{_ADVANCED_HINT}"
                    )
                return Not(walk(inner))
            case Cmp(prop, op, lit):
                name, spec = resolve(prop)
                if spec.collection:
                    raise _unsupported(name, resource, f" Filter a collection with a lambda: {name}/any(x:x eq '...').")
                allow(name, spec, op)
                typecheck(name, spec, lit, op)
                return Cmp(name, op, lit)
            case In(prop, values):
                name, spec = resolve(prop)
                allow(name, spec, "in")
                for lit in values:
                    typecheck(name, spec, lit, "in")
                return In(name, values)
            case Func(fname, prop, lit):
                name, spec = resolve(prop)
                allow(name, spec, fname)
                typecheck(name, spec, lit, fname)
                return Func(fname, name, lit)
            case Any_(prop, body):
                name, spec = resolve(prop)
                if not spec.collection:
                    raise _unsupported(name, resource, " It is not a collection; lambda operators apply to collections.")
                op = body.op if isinstance(body, Cmp) else body.name
                allow(name, spec, op)
                return Any_(name, body)
        raise AssertionError(node)

    return walk(node)


# --------------------------------------------------------------------------- compilation to a predicate

type Predicate = Callable[[int], bool]


def _leaf_test(op: str, lit: Literal) -> Callable[[Any], bool]:
    """A test on one property value (None = null). Strings compare case-insensitively, as Graph does."""
    value = lit.value
    if lit.kind == "null":
        return (lambda v: v is None) if op == "eq" else (lambda v: v is not None)
    if lit.kind == STR:
        low = value.lower()
        tests: dict[str, Callable[[Any], bool]] = {
            "eq": lambda v: v is not None and v.lower() == low,
            "ne": lambda v: v is None or v.lower() != low,
            "startsWith": lambda v: v is not None and v.lower().startswith(low),
            "endsWith": lambda v: v is not None and v.lower().endswith(low),
            "ge": lambda v: v is not None and v.lower() >= low,
            "le": lambda v: v is not None and v.lower() <= low,
        }
        return tests[op]
    tests = {
        "eq": lambda v: v is not None and v == value,
        "ne": lambda v: v is None or v != value,
        "ge": lambda v: v is not None and v >= value,
        "le": lambda v: v is not None and v <= value,
        "gt": lambda v: v is not None and v > value,
        "lt": lambda v: v is not None and v < value,
    }
    return tests[op]


def _in_test(values: tuple[Literal, ...]) -> Callable[[Any], bool]:
    strings = {lit.value.lower() for lit in values if lit.kind == STR}
    others = {lit.value for lit in values if lit.kind not in (STR, "null")}
    with_null = any(lit.kind == "null" for lit in values)
    return lambda v: (v is None and with_null) or (isinstance(v, str) and v.lower() in strings) or (v is not None and v in others)


def _getter(store: DeviceStore, prop: str) -> Callable[[int], Any]:
    """Read one property of device i, from a column when there is one."""
    if prop == "accountEnabled":
        enabled = store.enabled
        return lambda i: enabled[i] == 1
    if prop in ("approximateLastSignInDateTime", "registrationDateTime", "onPremisesLastSyncDateTime"):
        column = {
            "approximateLastSignInDateTime": store.signin,
            "registrationDateTime": store.registered,
            "onPremisesLastSyncDateTime": store.onprem_sync,
        }[prop]
        null = timefmt.NULL
        return lambda i: None if (v := column[i]) == null else v
    if prop == "displayName":
        names = store.names
        return lambda i: names[i] or None
    if prop == "id":
        return store.object_id
    if prop == "deviceId":
        return store.device_id
    if prop.startswith("extensionAttributes/"):
        key = prop.split("/", 1)[1]
        return lambda i: store.full(i)["extensionAttributes"].get(key)
    return lambda i: store.full(i).get(prop)


def compile_filter(node: Node, store: DeviceStore) -> Predicate:
    """A predicate over device indexes for a checked filter tree."""
    prefixes = _startswith_any(node)
    if prefixes is not None and isinstance(node, Or):  # one test instead of a chain (the scan's non-hex partition)
        prop, texts = prefixes
        return _column_predicate(store, prop, lambda v: v is not None and v.lower().startswith(texts))
    match node:
        case And(left, right):
            lp, rp = compile_filter(left, store), compile_filter(right, store)
            return lambda i: lp(i) and rp(i)
        case Or(left, right):
            lp, rp = compile_filter(left, store), compile_filter(right, store)
            return lambda i: lp(i) or rp(i)
        case Not(inner):
            ip = compile_filter(inner, store)
            return lambda i: not ip(i)
        case Any_(prop, body):
            test = _leaf_test(body.op if isinstance(body, Cmp) else body.name, body.value)
            get = _getter(store, prop)
            return lambda i: any(test(v) for v in (get(i) or ()))
        case Cmp(prop, op, lit) | Func(prop=prop, name=op, value=lit):
            return _column_predicate(store, prop, _leaf_test(op, lit))
        case In(prop, values):
            return _column_predicate(store, prop, _in_test(values))
    raise AssertionError(node)


def _startswith_any(node: Node) -> tuple[str, tuple[str, ...]] | None:
    """(property, lowercased prefixes) when `node` is startsWith, or an `or` of startsWith, on one property."""
    match node:
        case Func("startsWith", prop, Literal(kind, value)) if kind == STR:
            return prop, (value.lower(),)
        case Or(left, right):
            lp, rp = _startswith_any(left), _startswith_any(right)
            if lp is not None and rp is not None and lp[0] == rp[0]:
                return lp[0], lp[1] + rp[1]
    return None


def _column_predicate(store: DeviceStore, prop: str, test: Callable[[Any], bool]) -> Predicate:
    if prop in PROFILE_FIELDS:  # evaluate once per interned profile, then look the answer up
        prof, profiles = store.prof, store.profiles
        table = [test(p.fields[prop]) for p in profiles]
        return lambda i: table[k] if (k := prof[i]) < len(table) else test(profiles[k].fields[prop])
    get = _getter(store, prop)
    return lambda i: test(get(i))


def candidates(node: Node, store: DeviceStore) -> Sequence[int] | None:
    """Ascending device indexes a filter can only match (from an id/deviceId/displayName equality or a deviceId
    prefix it requires; the filter still decides), or None."""
    match node:
        case And(left, right):
            found = candidates(left, store)
            return found if found is not None else candidates(right, store)
        case Func("startsWith", "deviceId", Literal(kind, value)) if kind == STR and value:
            return store.with_device_id_prefix(value)
        case Cmp("id" | "deviceId" as prop, "eq", Literal(kind, value)) if kind == STR:
            return _by_guid(store, prop, (value,))
        case In("id" | "deviceId" as prop, values):
            return _by_guid(store, prop, tuple(v.value for v in values if v.kind == STR))
        case Cmp("displayName", "eq", Literal(kind, value)) if kind == STR:
            return store.find_by_name(value)
    return None


def _by_guid(store: DeviceStore, prop: str, values: tuple[str, ...]) -> list[int]:
    find = store.find if prop == "id" else store.find_by_device_id
    return sorted({i for v in values if (i := find(v)) is not None})


# --------------------------------------------------------------------------- list query options


@dataclass(frozen=True, slots=True)
class ListQuery:
    top: int
    select: tuple[str, ...] | None
    filter_text: str | None
    filter: Node | None
    count: bool
    advanced: bool  # ConsistencyLevel: eventual was sent
    orderby: tuple[str, bool] | None  # (property, descending)
    search: str | None
    position: int  # from $skiptoken; 0 on the first page
    params: Mapping[str, str]  # the original options, minus $skiptoken (kept in nextLink)

    def signature(self) -> int:
        return zlib.crc32(repr((self.filter_text, self.select, self.orderby, self.search)).encode())


_KNOWN_OPTIONS = {"$top", "$select", "$filter", "$count", "$orderby", "$search", "$skiptoken", "$expand", "$skip", "$format"}


def parse_list_query(
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    resource: str = "Device",
    select_field: Callable[[str], str | None] = canonical_field,
    filters: Mapping[str, FilterSpec] = DEVICE_FILTERS,
) -> ListQuery:
    """Validate the options of a list request the way Graph does for directory objects."""
    for option in query:
        if option.startswith("$") and option.lower() not in _KNOWN_OPTIONS:
            raise GraphHTTPError(400, "BadRequest", f"Query option '{option}' is not supported.")
    options = {k.lower(): v for k, v in query.items()}
    if "$skip" in options:
        raise GraphHTTPError(400, "Request_BadRequest", "'$skip' is not supported by the service; follow @odata.nextLink.")
    if "$expand" in options:
        raise GraphHTTPError(400, "Request_BadRequest", "This simulator does not support $expand on this resource.")
    advanced = headers.get("consistencylevel", "").strip().lower() == "eventual"
    count_text = options.get("$count", "false").lower()
    if count_text not in ("true", "false"):
        raise GraphHTTPError(400, "BadRequest", f"$count must be true or false, not {options['$count']!r}.")
    count = count_text == "true"
    if count and not advanced:
        raise GraphHTTPError(
            400,
            "Request_BadRequest",
            "$count is supported on directory objects only with the header 'ConsistencyLevel: eventual'.",
        )
    top_text = options.get("$top")
    top = DEFAULT_TOP
    if top_text is not None:
        try:
            top = int(top_text)
        except ValueError:
            raise GraphHTTPError(400, "BadRequest", f"Invalid value for $top: '{top_text}' is not an integer.") from None
        if not 1 <= top <= MAX_TOP:
            raise GraphHTTPError(
                400,
                "Request_UnsupportedQuery",
                f"Invalid page size specified: '{top}'. Must be between 1 and {MAX_TOP} inclusive.",
            )
    select = None
    if options.get("$select"):
        names = []
        for raw in options["$select"].split(","):
            name = select_field(raw)
            if name is None:
                raise GraphHTTPError(
                    400,
                    "BadRequest",
                    f"Could not find a property named '{raw.strip()}' on type 'microsoft.graph.{resource.lower()}'.",
                )
            names.append(name)
        select = tuple(dict.fromkeys(names))
    full_advanced = advanced and count
    filter_text = options.get("$filter")
    node = None
    if filter_text is not None:
        node = check_filter(parse_filter(filter_text), filters, resource, full_advanced)
    orderby = None
    if options.get("$orderby"):
        field_text, _, direction = options["$orderby"].strip().partition(" ")
        if field_text.lower() != "displayname" or direction.lower() not in ("", "asc", "desc"):
            raise GraphHTTPError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported $orderby '{options['$orderby']}'; this resource sorts by displayName only.",
            )
        if node is not None and not full_advanced:
            raise GraphHTTPError(
                400, "Request_UnsupportedQuery", f"Sorting a filtered list needs an advanced query.{_ADVANCED_HINT}"
            )
        orderby = ("displayName", direction.lower() == "desc")
    search = options.get("$search")
    if search is not None:
        if not full_advanced:
            raise GraphHTTPError(400, "Request_UnsupportedQuery", f"$search needs an advanced query.{_ADVANCED_HINT}")
        search = _parse_search(search)
    query_without_token = {k: v for k, v in query.items() if k.lower() != "$skiptoken"}
    parsed = ListQuery(top, select, filter_text, node, count, advanced, orderby, search, 0, query_without_token)
    token = options.get("$skiptoken")
    if token is not None:
        return ListQuery(
            top,
            select,
            filter_text,
            node,
            count,
            advanced,
            orderby,
            search,
            decode_skiptoken(token, parsed.signature()),
            query_without_token,
        )
    return parsed


def _parse_search(text: str) -> str:
    match = re.fullmatch(r'\s*"displayName:([^"]*)"\s*', text)
    if not match:
        raise GraphHTTPError(400, "Request_UnsupportedQuery", 'Use $search="displayName:<text>" (quotes included).')
    return match.group(1).lower()


def encode_skiptoken(position: int, signature: int) -> str:
    raw = f"sim1:{position}:{signature}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token: str, signature: int) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        tag, position, sig = raw.split(":")
        if tag != "sim1":
            raise ValueError(tag)
        position_value, sig_value = int(position), int(sig)
    except (ValueError, UnicodeDecodeError):
        raise GraphHTTPError(
            400, "Request_BadRequest", "The $skiptoken is malformed; use @odata.nextLink exactly as returned."
        ) from None
    if sig_value != signature:
        raise GraphHTTPError(
            400,
            "Request_BadRequest",
            "The $skiptoken belongs to a different query ($filter/$select changed); start from the first page.",
        )
    return position_value
