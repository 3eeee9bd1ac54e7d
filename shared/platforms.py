"""Platform families: one name per platform, whatever spelling Graph's operatingSystem uses for it.

Graph reports the same platform under several operatingSystem values (Intune-enrolled Macs as `MacMDM`,
others as `macOS` or `Mac OS X`; iPads as `IPad` or `iPadOS`; Android as `Android`, `AndroidForWork`,
`AndroidEnterprise`, `AndroidAOSP`). Policy thresholds (`stale.platforms`) and the platform-capability
rules key on the family, so a Mac is treated as a Mac whichever string its enrolment produced.
Source: Graph device resource (operatingSystem is free text set by the registering client); the values
below are the ones the Entra admin center's device list filters show, matched case-insensitively.
"""

from __future__ import annotations

from typing import Final

WINDOWS: Final = "windows"
MACOS: Final = "macos"
IOS: Final = "ios"
ANDROID: Final = "android"
LINUX: Final = "linux"
OTHER: Final = "other"

#: Family -> the operatingSystem values it covers (lower case; a trailing `*` matches a prefix). Order matters:
#: the first family with a match wins.
FAMILIES: Final[dict[str, tuple[str, ...]]] = {
    WINDOWS: ("windows*",),
    MACOS: ("macmdm", "macos", "mac os x", "mac os", "osx", "macintosh"),
    IOS: ("ios", "ipados", "ipad", "iphone"),
    ANDROID: ("android*",),
    LINUX: ("linux", "ubuntu", "redhat", "red hat enterprise linux", "rhel", "debian"),
    OTHER: (),
}


def _matches(value: str, pattern: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


def family(operating_system: str | None) -> str:
    """The platform family of an operatingSystem value; `other` when none matches (or it is blank)."""
    value = (operating_system or "").strip().lower()
    if value:
        for name, patterns in FAMILIES.items():
            if any(_matches(value, p) for p in patterns):
                return name
    return OTHER


def is_windows(operating_system: str | None) -> bool:
    """Windows (any edition): the only platform an app identity may disable (see docs/safety.md)."""
    return family(operating_system) == WINDOWS
