"""Agent runtimes: the built-in tool loop, its tools, the model seam and scripted turns."""

from __future__ import annotations

from sandbox.runtime.builtin import AgentResult, AgentStatus, StepEvent, run_agent
from sandbox.runtime.model import (
    BudgetExhausted,
    ModelClient,
    ModelError,
    ModelErrorKind,
    ModelTurn,
    ToolCall,
)
from sandbox.runtime.script import (
    Script,
    ScriptedCall,
    ScriptedTurn,
    ScriptError,
    load_script,
)
from sandbox.runtime.tools import Toolbox, tool_schemas

__all__ = [
    "AgentResult",
    "AgentStatus",
    "BudgetExhausted",
    "ModelClient",
    "ModelError",
    "ModelErrorKind",
    "ModelTurn",
    "Script",
    "ScriptError",
    "ScriptedCall",
    "ScriptedTurn",
    "StepEvent",
    "ToolCall",
    "Toolbox",
    "load_script",
    "run_agent",
    "tool_schemas",
]
