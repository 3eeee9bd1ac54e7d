"""Index a function app offline with the Python worker's own indexer (azure-functions-runtime, pinned).

Run as `python -m tests.infra.index_app PATH/function_app.py`; prints JSON: each function's name, its
bindings as the host receives them (raw bindings) and what the worker's registry derived. The worker's
`Registry` validates parameters against bindings exactly as in Azure (a FunctionLoadError exits 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class _Message:
    """Stand-in for a protobuf message: keeps its fields (the host process is not here)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


class _BindingInfo(_Message):
    # Enum values of BindingInfo.Direction and BindingInfo.DataType in the Functions RPC protocol.
    out = 1
    inout = 2
    undefined = 0
    string = 1
    binary = 2
    stream = 3


setattr(_BindingInfo, "in", 0)  # `in` is a keyword in Python

PROTOS = SimpleNamespace(BindingInfo=_BindingInfo, RpcFunctionMetadata=_Message, RpcRetryOptions=_Message)


def index(app_path: Path) -> list[dict[str, Any]]:
    from azure_functions_runtime import loader
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import Registry

    load_binding_registry()  # what the worker does on WorkerInitRequest, before it indexes
    sys.path.insert(0, str(app_path.parent))
    indexed = loader.index_function_app(str(app_path))
    registry = Registry()
    metadata, _logs = loader.process_indexed_function(PROTOS, registry, indexed, str(app_path.parent))
    out = []
    for meta in metadata:
        info = registry.get_function(meta.function_id)
        out.append(
            {
                "name": meta.name,
                "bindings": [json.loads(raw) for raw in meta.raw_bindings],
                "is_http": info.is_http_func,
                "is_async": info.is_async,
                "inputs": sorted(info.input_types),
            }
        )
    return out


if __name__ == "__main__":
    print(json.dumps(index(Path(sys.argv[1]).resolve())))
