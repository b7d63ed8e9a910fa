"""Jinja's code generator with the operations the sandbox does not see routed through it."""

from __future__ import annotations

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, operators, optimizeconst

METERED_ITER = "metered_iter"


class MeteredCodeGenerator(CodeGenerator):
    """Jinja's code generator, routing the operations the sandbox does not see through it.

    The stock sandbox intercepts attributes, items, calls and chosen operators; loop
    iteration, ``~``, slices and comparisons compile to plain Python, so a loop that prints
    nothing, a doubling ``~`` or a comparison of huge values would escape the budget.
    """

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        target = node.node
        if isinstance(target, nodes.EnvironmentAttribute) and target.name == METERED_ITER:
            self.write(f"environment.{METERED_ITER}(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        # Each operand is priced where Python evaluates it, keeping chained comparisons lazy;
        # constants are bounded by the template's own length and need no price.
        self.write("(")
        self._priced_operand(node.expr, frame)
        for operand in node.ops:
            self.write(f" {operators[operand.op]} ")
            self._priced_operand(operand.expr, frame)
        self.write(")")

    def _priced_operand(self, node: nodes.Expr, frame: Frame) -> None:
        if isinstance(node, nodes.Const):
            self.visit(node, frame)
            return
        self.write("environment.compared(")
        self.visit(node, frame)
        self.write(")")

    @optimizeconst
    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice):
            super().visit_Getitem(node, frame)
            return
        self.write("environment.slice_item(")
        self.visit(node.node, frame)
        for part in (node.arg.start, node.arg.stop, node.arg.step):
            self.write(", ")
            if part is None:
                self.write("None")
            else:
                self.visit(part, frame)
        self.write(")")
