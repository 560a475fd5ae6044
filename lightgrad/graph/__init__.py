"""Graph mode: the IR, recording, replay and ``lg.jit`` (see docs chapter 9).

>>> import lightgrad as lg
>>> lg.graph.Graph().nodes
[]
"""
from .errors import GraphError, TraceError
from .executor import Executor, Plan
from .ir import Graph, Node
from .jit import JitFunction, JitWarning, jit
from .recording import RecordingBackend, graph_device, is_tracing, tracing

__all__ = ["Executor", "Graph", "GraphError", "JitFunction", "JitWarning", "Node", "Plan",
           "RecordingBackend", "TraceError", "graph_device", "is_tracing", "jit", "tracing"]
from .passes import memory_stats, plan_memory, run_passes  # noqa: E402
from .session import Session  # noqa: E402
from .tf import (FREE_DIM, GradientDescentOptimizer, Operation, Variable,  # noqa: E402
                 get_default_graph, global_variables_initializer, gradients, placeholder,
                 reset_default_graph, trainable_variables)

__all__ += ["FREE_DIM", "GradientDescentOptimizer", "Operation", "Session", "Variable",
            "get_default_graph", "global_variables_initializer", "gradients",
            "memory_stats", "placeholder", "plan_memory", "reset_default_graph", "run_passes",
            "trainable_variables"]
