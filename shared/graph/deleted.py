"""Graph beta `directory/deletedItems` for devices: the URLs, the requests and the shape of a deleted device.

Device soft delete (preview; Microsoft Learn, device management docs dated 2026-04): a deleted Entra joined or
registered device stays in deleted items for 30 days, answers 404 at /devices/{id} meanwhile (its deviceId stays
reserved) and can be restored with `POST /beta/directory/deletedItems/{id}/restore`; it comes back non-compliant
until it checks in. Hybrid joined objects are deleted for good at once and are never there. Only beta serves
devices in deleted items (v1.0 lists users, groups and applications), so these requests go to the beta root
next to the configured v1.0 one, through the same SDK adapter (auth, middleware, retries).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import msgspec

from shared.errors import ConfigError
from shared.graph import paths

if TYPE_CHECKING:
    from kiota_abstractions.request_information import RequestInformation

#: How long a deleted device stays restorable (Microsoft Learn, device soft delete, preview).
RESTORE_WINDOW_DAYS = 30
DEVICE_TYPE = "#microsoft.graph.device"
_V1 = "/v1.0"


class DeletedStamp(msgspec.Struct, frozen=True, gc=False):
    """What a deleted item adds to the object's own properties: its type and when it was deleted."""

    odata_type: str | None = msgspec.field(default=None, name="@odata.type")
    deleted_date_time: datetime | None = msgspec.field(default=None, name="deletedDateTime")


DELETED_STAMP = msgspec.json.Decoder(DeletedStamp)


def beta_root(base_url: str) -> str:
    """The beta root next to a v1.0 root: https://graph.microsoft.com/v1.0 -> https://graph.microsoft.com/beta."""
    if not base_url.endswith(_V1):
        raise ConfigError(
            "GRAPH_BASE_URL",
            f"must end in /v1.0 for entra-janitor to find the beta root next to it (deleted devices), not {base_url!r}",
        )
    return f"{base_url[: -len(_V1)]}/beta"


def item_url(base_url: str, object_id: str, select: Iterable[str] = ()) -> str:
    """GET one deleted item by object id (refused before anything is sent when the id is not a GUID)."""
    key = paths.encode(paths.object_id(object_id, "device object id"))
    fields = list(select)
    query = f"?{urlencode({'$select': ','.join(fields)}, quote_via=quote, safe=',')}" if fields else ""
    return f"{beta_root(base_url)}/directory/deletedItems/{key}{query}"


def restore_url(base_url: str, object_id: str) -> str:
    key = paths.encode(paths.object_id(object_id, "device object id"))
    return f"{beta_root(base_url)}/directory/deletedItems/{key}/restore"


def request(method: str, url: str) -> RequestInformation:
    """A request to an absolute URL on the Graph host (no body: restore takes none)."""
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation

    info = RequestInformation(Method(method))
    info.url = url
    info.headers.try_add("Accept", "application/json")
    return info
