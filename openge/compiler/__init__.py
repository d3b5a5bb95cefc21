"""The compiler: passes, memory planner and task generation, producing a CompiledModel."""

from openge.compiler.memory import Lifetime, MemoryPlan, check_plan, plan_memory
from openge.compiler.options import KNOWN_OPTIONS, validate_options
from openge.compiler.pipeline import CompileReport, compile_graph, default_passes

__all__ = [
    "KNOWN_OPTIONS",
    "CompileReport",
    "Lifetime",
    "MemoryPlan",
    "check_plan",
    "compile_graph",
    "default_passes",
    "plan_memory",
    "validate_options",
]
