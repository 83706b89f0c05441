"""``diffbench explain`` in the terminal: the graph as a tree, the forward and backward passes,
the paths of each input and the three values of each partial derivative."""

from __future__ import annotations

from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..explain import Explanation, InputPaths, Node, Path
from . import format as fmt


def node_name(node: Node) -> str:
    """An input's own name, or ``v<index>`` for a recorded op."""
    return node.label if node.op == "input" else f"v{node.index}"


def _describe(node: Node) -> str:
    if node.op == "input":
        return f"{escape(node.label)} = {fmt.number(node.value)}  [dim](input)[/dim]"
    return (f"{node_name(node)} = {escape(node.label)} = {fmt.number(node.value)}  "
            f"[dim]{escape(f'[{node.op}]')}[/dim]")


def path_text(explanation: Explanation, path: Path) -> str:
    """``a → v2 → v3``; an edge from a value read twice or more by its result names the
    operand it is, ``x →(2) v1``."""
    nodes = explanation.nodes
    text = node_name(nodes[path.nodes[0]])
    edges = zip(path.nodes[:-1], path.slots, path.nodes[1:], strict=True)
    for operand, slot, result in edges:
        repeated = nodes[result].operands.count(operand) > 1
        text += f" →({slot + 1}) " if repeated else " → "
        text += node_name(nodes[result])
    return text


def graph_tree(explanation: Explanation) -> Tree:
    """The graph from the output down to the inputs, operands in order; each edge shows its
    local derivative.  A value read twice or more is drawn in full once, then referred to."""
    nodes = explanation.nodes
    output = nodes[explanation.trace.output]
    root = Tree(_describe(output), guide_style="dim")
    drawn = {output.index}
    stack = [(root, nodes[i], local) for i, local in reversed(list(zip(
        output.operands, output.local, strict=True)))]
    while stack:
        branch, node, local = stack.pop()
        edge = f"[cyan]∂ {fmt.number(local)}[/cyan] ← "
        if node.index in drawn and node.operands:
            branch.add(edge + f"{node_name(node)} [dim](shown above)[/dim]")
            continue
        drawn.add(node.index)
        child = branch.add(edge + _describe(node))
        stack.extend((child, nodes[i], d) for i, d in reversed(list(zip(
            node.operands, node.local, strict=True))))
    return root


def forward_table(explanation: Explanation) -> Table:
    table = Table(title="forward pass (the tape, in order)", header_style="bold")
    for column, justify in (("node", "left"), ("op", "left"), ("expression", "left"),
                            ("operands", "left"), ("value", "right"),
                            ("cotangent ∂f/∂node", "right")):
        table.add_column(column, justify=justify)
    nodes = explanation.nodes
    for node in nodes:
        table.add_row(node_name(node), node.op, node.label,
                      ", ".join(node_name(nodes[i]) for i in node.operands) or "–",
                      fmt.number(node.value),
                      fmt.number(explanation.trace.cotangents.get(node.index)))
    return table


def backward_table(explanation: Explanation) -> Table:
    table = Table(title="backward pass (the tape in reverse; output cotangent 1)",
                  header_style="bold",
                  caption="contribution = cotangent × local derivative, the record's VJP; "
                          "contributions reaching one node are summed")
    for column, justify in (("step", "right"), ("node", "left"), ("cotangent", "right"),
                            ("to", "left"), ("local ∂node/∂to", "right"),
                            ("contribution", "right")):
        table.add_column(column, justify=justify)
    nodes = explanation.nodes
    for k, step in enumerate(explanation.trace.steps, start=1):
        table.add_row(str(k), node_name(nodes[step.node]), fmt.number(step.cotangent),
                      node_name(nodes[step.operand]), fmt.number(step.local),
                      fmt.number(step.contribution))
    return table


def paths_table(explanation: Explanation, entry: InputPaths) -> Table:
    nodes = explanation.nodes
    output = node_name(nodes[explanation.trace.output])
    plural = "" if entry.total == 1 else "s"
    if entry.capped:
        caption = (f"[yellow]capped: the first {len(entry.paths)} of {entry.total} paths "
                   f"(--max-paths {explanation.max_paths}); their sum "
                   f"{fmt.number(entry.path_sum)} is partial[/yellow]")
    else:
        caption = f"sum over {entry.total} path{plural} = {fmt.number(entry.path_sum)}"
    texts = [path_text(explanation, path) for path in entry.paths]
    if any("→(" in text for text in texts):
        caption += "; →(k): into operand k of a value that reads the same one twice"
    table = Table(title=f"paths from {entry.name} to {output}", header_style="bold",
                  caption=caption)
    for column, justify in (("#", "right"), ("path", "left"), ("local derivatives", "left"),
                            ("product", "right")):
        table.add_column(column, justify=justify)
    for k, (path, text) in enumerate(zip(entry.paths, texts, strict=True), start=1):
        table.add_row(str(k), Text(text),
                      " × ".join(fmt.number(f) for f in path.factors) or "1",
                      fmt.number(path.product))
    return table


def gradient_table(explanation: Explanation) -> Table:
    table = Table(title="the gradient three ways", header_style="bold",
                  caption="Σ paths: the chain rule path by path; engine: ad's backward; "
                          "symbolic: sympy.diff evaluated at the point")
    for column, justify in (("input", "left"), ("paths", "right"), ("Σ paths", "right"),
                            ("engine", "right"), ("symbolic", "right"),
                            ("∂f/∂input (SymPy)", "left")):
        table.add_column(column, justify=justify)
    for entry in explanation.inputs:
        total = fmt.number(entry.path_sum) + (" [yellow](partial)[/yellow]"
                                              if entry.capped else "")
        table.add_row(entry.name, str(entry.total), total, fmt.number(entry.engine),
                      fmt.number(entry.symbolic.value), Text(entry.symbolic.formula))
    return table


def explanation_renderables(explanation: Explanation) -> list[RenderableType]:
    """Everything ``diffbench explain`` prints, in order."""
    at = ", ".join(f"{name} = {fmt.number(value)}" for name, value in explanation.point.items())
    header = Text.from_markup(f"[bold]f = {explanation.text}[/bold] at {at}: "
                              f"f = {fmt.number(explanation.value)}")
    notes = [Text(f"note: {note}", style="yellow") for note in explanation.notes]
    return [header, *notes, Text("computation graph (output first; ∂ is each edge's local "
                                 "derivative)", style="bold"),
            graph_tree(explanation), forward_table(explanation), backward_table(explanation),
            *(paths_table(explanation, entry) for entry in explanation.inputs),
            gradient_table(explanation)]
