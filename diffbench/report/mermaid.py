"""A traced expression's graph as a Mermaid ``flowchart``: inputs on the left, the output on
the right, each edge labelled with its local derivative."""

from __future__ import annotations

from ..explain import Explanation
from . import format as fmt


def _label(text: str) -> str:
    """A quoted Mermaid label (a double quote inside is written as its entity)."""
    return '"' + text.replace('"', "#quot;") + '"'


def mermaid_flowchart(explanation: Explanation) -> str:
    """Node ids are ``v<index>`` (valid whatever the variables are called); every edge runs
    from an operand to its result."""
    lines = ["flowchart LR"]
    for node in explanation.nodes:
        value = fmt.number(node.value)
        text = (f"{node.label} = {value}" if node.op == "input"
                else f"v{node.index} {node.op}<br/>{node.label} = {value}")
        lines.append(f"    v{node.index}[{_label(text)}]")
    for node in explanation.nodes:
        for operand, local in zip(node.operands, node.local, strict=True):
            lines.append(f"    v{operand} -->|{_label('∂ ' + fmt.number(local))}| v{node.index}")
    return "\n".join(lines) + "\n"
