"""Join-scope check: may this user Entra-join a device (tenant join setting and device quota)?

`evaluate_join_scope` is the pure decision (no I/O); `check_join_scope` reads the tenant through the Graph
port and calls it. Diagnosis stage 1 (eligibility) and the worker's `scope_check` action both use these.
"""

from shared.scope.check import check_join_scope
from shared.scope.evaluate import ScopePolicyError, ScopeResult, evaluate_join_scope

__all__ = ["ScopePolicyError", "ScopeResult", "check_join_scope", "evaluate_join_scope"]
