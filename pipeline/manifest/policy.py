"""The manifest's licence policy: the optional ``[policy]`` table, and the jobs it refuses.

A print house may only clear some licences. ``[policy]`` lists them; a job whose style (or
any style of its blend) has another licence is refused at that job, so a run fails it alone
and prints the others. The style's declaration itself stays valid: the policy is about what
the manifest's jobs may print, not about which styles may be declared.

Every style needs an attribution whatever the policy says (:mod:`pipeline.manifest.styles`),
so ``require_attribution`` may state that requirement but not switch it off.

The underscore names are shared by the modules of :mod:`pipeline.manifest` only.
"""

from __future__ import annotations

from typing import Any

from pipeline.manifest.problems import _BAD, _check_keys, _Invalid, _Where
from pipeline.manifest.specs import Policy, StyleUse
from pipeline.manifest.values import _as_text


def _as_licences(value: Any) -> tuple[str, ...]:
    """``allowed_licenses``: a non-empty list of licence names."""
    if not isinstance(value, list):
        raise _Invalid(f'must be a list of licence names, e.g. ["CC0-1.0", "public-domain"], got {value!r}')
    if not value:
        raise _Invalid("lists no licence, so every job would be refused (leave it out to allow any licence)")
    names = []
    for index, name in enumerate(value, 1):
        try:
            names.append(_as_text(name))
        except _Invalid as error:
            raise _Invalid(f"entry {index} {error}") from None
    return tuple(names)


def _as_required_attribution(value: Any) -> bool:
    """``require_attribution``: ``true`` (what every manifest requires anyway)."""
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {value!r}")
    if not value:
        raise _Invalid(
            "cannot be false: every style needs an attribution (creator, title, year, source), "
            "with or without a policy; leave the key out or set it to true"
        )
    return value


_PARSERS = {"allowed_licenses": _as_licences, "require_attribution": _as_required_attribution}


def _read_policy(where: _Where, table: Any) -> Policy | None:
    """The ``[policy]`` table, or ``None`` without one; bad values are reported and keep their default."""
    if not isinstance(table, dict):  # absent, or not a table (reported with the other tables)
        return None
    _check_keys(where, table, Policy.__dataclass_fields__)
    values = {name: where.read(name, parse, table[name]) for name, parse in _PARSERS.items() if name in table}
    return Policy(**{k: v for k, v in values.items() if v is not _BAD})


def _allowed_uses(where: _Where, uses: Any, policy: Policy | None) -> Any:
    """A job's styles when the policy allows each one's licence, else :data:`_BAD` after reporting each."""
    if uses is _BAD or policy is None or policy.allowed_licenses is None:
        return uses
    refused: list[StyleUse] = [use for use in uses if not policy.allows(use.style.license)]
    allowed = ", ".join(policy.allowed_licenses)
    for use in refused:
        where.error(
            "style",
            f"style '{use.style.id}': licence '{use.style.license}' is not allowed by the manifest's [policy] "
            f"allowed_licenses ({allowed})",
        )
    return _BAD if refused else uses
