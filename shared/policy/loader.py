"""Load and validate a policy file in stages, so every problem is reported with its path.

1. Structure: YAML syntax (duplicate keys refused), sections are mappings, unknown keys named (with a
   suggestion). Derived from the JSON Schema, so the known keys are declared once.
2. JSON Schema (`policy.schema.json`): types, enums, minimums, formats.
3. Semantics: rules that span keys or that a schema cannot say well.
Stage 2 checks whatever stage 1 did not reject (unknown keys set aside), so one run lists every problem;
stage 3 runs only on a policy that passed both, as its rules assume well-typed values.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, cast

import jsonschema
import msgspec
import yaml

from shared import settings
from shared.errors import PermanentError
from shared.jsonshape import is_array, is_dict, is_object
from shared.platforms import FAMILIES
from shared.policy.model import Policy

#: Keys people expect in a policy that live elsewhere, with where to look instead.
_MOVED_KEYS = {
    "schedule": "the scan schedule is not a policy key; set the SCAN_SCHEDULE app setting (NCRONTAB, 6 fields)",
    "kill_switch": "the kill switch is not a policy key; set the JANITOR_KILL_SWITCH app setting",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy, at a dotted path such as `stale.disable_after_days`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(top level)'}: {self.message}"


class PolicyError(PermanentError):
    """The policy cannot be used. `problems` lists each one with its path."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"policy {source} is invalid ({len(self.problems)} problem(s)):\n{lines}")


# --------------------------------------------------------------------------- schema


@cache
def policy_schema() -> dict[str, Any]:
    """The JSON Schema shipped in this package (the same file editors use for completion)."""
    return json.loads(resources.files(__package__).joinpath("policy.schema.json").read_text(encoding="utf-8"))


def schema_path() -> Path:
    """Filesystem path of the schema, for `$schema` / yaml-language-server modelines."""
    return Path(str(resources.files(__package__).joinpath("policy.schema.json")))


# --------------------------------------------------------------------------- stage 1: structure


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _LoaderCalls(Protocol):
    """The loader methods used below, typed: PyYAML's stubs leave their parameters and results unannotated."""

    def check_event(self, *choices: type[yaml.Event]) -> bool: ...

    def peek_event(self) -> yaml.Event: ...

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any: ...


def _calls(loader: yaml.SafeLoader) -> _LoaderCalls:
    return cast(_LoaderCalls, loader)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one) and aliases.

    Aliases are refused because a policy never needs them and a few nested ones expand exponentially
    ("billion laughs"): the file is rejected before anything is expanded.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if _calls(self).check_event(yaml.AliasEvent):
            event = _calls(self).peek_event()
            raise _DuplicateKey(
                problem="YAML aliases (*name) are not supported in a policy; write the value out instead",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = _calls(loader).construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # unhashable (a list, mapping or set as a key); reported by the structure check
        if key in seen:
            raise _DuplicateKey(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

#: Longest integer a policy may spell: its numbers are days and counts. Python refuses to convert (or print)
#: more than 4,300 digits with a bare ValueError, and a long number would flood the problem list.
MAX_INT_CHARS = 32


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> int:
    if len(node.value) > MAX_INT_CHARS:
        raise _DuplicateKey(
            problem=f"a number of {len(node.value):,} characters; policy numbers have at most {MAX_INT_CHARS}",
            problem_mark=node.start_mark,
        )
    value: int = loader.construct_yaml_int(node)
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _parse_yaml(text: str) -> tuple[Any, list[Problem]]:
    try:
        return yaml.load(text, Loader=_StrictLoader), []  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, [Problem("", f"{where}: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem("", f"not valid YAML: {exc}")]
    except RecursionError:
        return None, [Problem("", "YAML nested too deeply for a policy file")]


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, str):
        return f"text ({_shown(value)})"
    return f"{type(value).__name__} {_shown(value)}"


def _shown(value: Any) -> str:
    """A value as a problem message quotes it: its repr, clipped (a policy value can be megabytes of text)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text):,} characters)"


def _check_structure(value: Any, schema: Mapping[str, Any], path: str = "") -> list[Problem]:
    """Mappings where the schema wants objects, and only the keys it declares."""
    if schema.get("type") != "object":
        return []
    if not is_dict(value):
        return [Problem(path, f"must be a mapping of keys, not {_kind(value)}")]
    problems: list[Problem] = []
    known = schema.get("properties")
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(Problem(_join(path, str(key)), f"keys must be text, not {_kind(key)}"))
            continue
        where = _join(path, key)
        if known is None:  # a free-form map (stale.platforms): the schema stage checks its values
            continue
        if key not in known:
            problems.append(Problem(where, _unknown_key_message(key, path, known)))
            continue
        problems.extend(_check_structure(item, known[key], where))
    return problems


def _prune(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` without what the structure check rejected, so the schema stage can still check the rest."""
    known = schema.get("properties")
    if schema.get("type") != "object" or not is_dict(value) or known is None:
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or key not in known:
            continue
        if known[key].get("type") == "object" and not isinstance(item, dict):
            continue
        kept[key] = _prune(item, known[key])
    return kept


def _unknown_key_message(key: str, path: str, known: Mapping[str, Any]) -> str:
    if not path and key in _MOVED_KEYS:
        return f"unknown key: {_MOVED_KEYS[key]}"
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; known keys here: {', '.join(known)}"


# --------------------------------------------------------------------------- stage 2: JSON Schema


def _schema_message(error: jsonschema.ValidationError) -> str:
    value, arg, sub = error.instance, error.validator_value, error.schema
    match error.validator:
        case "minimum":
            return f"{value} is below the minimum {arg}"
        case "maximum":
            return f"{value} is above the maximum {arg}"
        case "exclusiveMinimum":
            return f"{value} must be greater than {arg}"
        case "const" if arg is True:
            return "cannot be turned off"
        case "const":
            return f"must be {arg!r}"
        case "enum" if is_array(arg):
            return f"{_shown(value)} is not one of: {', '.join(map(str, arg))}"
        case "type":
            wanted = {"integer": "a whole number", "number": "a number", "boolean": "true or false",
                      "string": "text", "array": "a list", "object": "a mapping"}.get(str(arg), str(arg))
            return f"must be {wanted}, not {_kind(value)}"
        case "pattern" if is_object(sub) and "title" in sub:
            return f"{_shown(value)} is not a {sub['title']}"
        case "minLength" | "propertyNames":
            return "must not be empty"
        case _:
            return error.message


class _Validator(Protocol):
    """What is used of a jsonschema validator: the stubs leave one overload of iter_errors unannotated."""

    def iter_errors(self, instance: Any) -> Iterator[jsonschema.ValidationError]: ...


def _check_schema(data: Any) -> list[Problem]:
    validator = cast(_Validator, jsonschema.Draft202012Validator(policy_schema()))
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        path = ""
        for part in error.absolute_path:
            path = _join(path, part)
        problems.append(Problem(path, _schema_message(error)))
    return sorted(problems, key=lambda p: p.path)


# --------------------------------------------------------------------------- stage 3: semantics


def _platform_names_known(data: Mapping[str, Any]) -> list[Problem]:
    """stale.platforms keys are platform families (shared/platforms.py), each named once (case is ignored)."""
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    for name in data.get("stale", {}).get("platforms", {}):
        folded = name.strip().lower()
        where = f"stale.platforms.{name}"
        if folded not in FAMILIES:
            covers = "; ".join(f"{f} ({', '.join(v) or 'anything else'})" for f, v in FAMILIES.items())
            problems.append(Problem(where, f"is not a platform family; use one of: {covers}"))
        elif folded in seen:
            problems.append(Problem(where, f"names the same platform as {seen[folded]!r} (case is ignored)"))
        seen.setdefault(folded, name)
    return problems


#: Pending objects may be minutes old while the device finishes registering: deleting needs a longer wait.
MIN_STUCK_DAYS_FOR_DELETE = 7


def _pending_delete_waits(data: Mapping[str, Any]) -> list[Problem]:
    pending = data.get("pending", {})
    days = pending.get("stuck_after_days", 14)
    if pending.get("action") == "delete" and days < MIN_STUCK_DAYS_FOR_DELETE:
        return [Problem("pending.stuck_after_days",
                        f"{days} is below the minimum {MIN_STUCK_DAYS_FOR_DELETE} when pending.action is delete")]
    return []


def _no_repeats(section: str, key: str) -> Callable[[Mapping[str, Any]], list[Problem]]:
    def check(data: Mapping[str, Any]) -> list[Problem]:
        first: dict[str, int] = {}
        problems: list[Problem] = []
        for index, item in enumerate(data.get(section, {}).get(key, [])):
            folded = item.strip().lower()
            if folded in first:
                problems.append(Problem(f"{section}.{key}[{index}]", f"repeats {section}.{key}[{first[folded]}]"))
            first.setdefault(folded, index)
        return problems

    return check


SEMANTIC_CHECKS: tuple[Callable[[Mapping[str, Any]], list[Problem]], ...] = (
    _platform_names_known,
    _pending_delete_waits,
    _no_repeats("protect", "groups"),
    _no_repeats("protect", "name_patterns"),
    _no_repeats("notify", "admins"),
)


# --------------------------------------------------------------------------- public API


def check_policy(data: Any) -> list[Problem]:
    """Every problem with already-parsed policy data (None = empty file = defaults); [] when valid."""
    if data is None:
        return []
    schema = policy_schema()
    structure = _check_structure(data, schema)
    if not is_dict(data):
        return structure
    problems = structure + _check_schema(_prune(data, schema) if structure else data)
    if problems:
        return problems
    return [problem for check in SEMANTIC_CHECKS for problem in check(data)]


def policy_from_data(data: Any, *, source: str = "<data>") -> Policy:
    """Validate parsed data and build the Policy; raises PolicyError listing every problem."""
    problems = check_policy(data)
    if problems:
        raise PolicyError(source, problems)
    document: Any = data or {}
    try:
        return msgspec.convert(document, Policy, strict=False)
    except msgspec.ValidationError as exc:  # the stages above should make this unreachable
        raise PolicyError(source, [Problem("", str(exc))]) from exc


def parse_policy(text: str, *, source: str = "<text>") -> Policy:
    """A policy from YAML text (an empty document means all defaults)."""
    data, problems = _parse_yaml(text)
    if problems:
        raise PolicyError(source, problems)
    return policy_from_data(data, source=source)


def check_policy_text(text: str) -> list[Problem]:
    """Every problem with a YAML policy document; [] when it is valid."""
    data, problems = _parse_yaml(text)
    return problems or check_policy(data)


def read_policy_file(path: str | os.PathLike[str]) -> str:
    """The file's text; a missing or unreadable file is a PolicyError saying so."""
    file = Path(path).expanduser()
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(str(file), [Problem("", "no such file (check the path, or JANITOR_POLICY)")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(file), [Problem("", f"cannot be read: {exc}")]) from exc


def load_policy(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> Policy:
    """The effective policy: from `path`, else the JANITOR_POLICY setting, else the safe defaults."""
    if path is None:
        path = settings.get("JANITOR_POLICY", env)
    if path is None:
        return Policy()
    return parse_policy(read_policy_file(path), source=str(path))


def dump_policy(policy: Policy) -> str:
    """The policy as YAML, every key spelled out (what `janitor policy show` prints)."""
    return yaml.safe_dump(policy.to_dict(), sort_keys=False, default_flow_style=False)
