"""Execution (Go's text/template/exec.go): walk the tree, evaluate pipelines, print values.

Each evaluation step records the node it is on, as Go's `s.at(node)` does, so an error names
the same location and the same source text Go's would (`executing "x" at <.a.b>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from . import nodes as n
from .errors import FunctionError, TemplateError
from .funcs import GO_TYPES, GoFunc, Namespace
from .gofmt import quote, sprint_value
from .values import NO_VALUE, Int64, StringMap, is_int, receiver_type_name, sorted_items, truth, type_name

MAX_EXEC_DEPTH = 100  # Go allows 100000 nested template calls; Python's stack is smaller.


class _Missing:
    """Go's missingVal: 'no value was piped in' (distinct from every real value)."""

    __slots__ = ()


MISSING: Any = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class State:
    __slots__ = ("depth", "funcs", "missing_key", "node", "out", "templates", "tmpl_name", "vars")

    def __init__(
        self,
        templates: Mapping[str, Any],
        funcs: Mapping[str, GoFunc],
        missing_key: str,
        tmpl_name: str,
        out: list[str],
        data: Any,
        depth: int = 0,
    ) -> None:
        self.templates = templates
        self.funcs = funcs
        self.missing_key = missing_key
        self.tmpl_name = tmpl_name
        self.out = out
        self.node: n.Node | None = None
        self.vars: list[list[Any]] = [["$", data]]
        self.depth = depth

    # --- variables -------------------------------------------------------------------------

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def set_top_var(self, index: int, value: Any) -> None:
        self.vars[len(self.vars) - index][1] = value

    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.errorf(f"undefined variable: {name}")

    # --- errors ----------------------------------------------------------------------------

    def at(self, node: n.Node) -> None:
        self.node = node

    def errorf(self, message: str) -> NoReturn:
        name = self.tmpl_name
        node = self.node
        if node is None or node.tree is None:
            raise TemplateError(f"template: {name}: {message}", name=name, template=name, reason=message)
        tree = node.tree
        before = tree.text[: node.pos]
        newline = before.rfind("\n")
        segment = before[newline + 1 :]
        column = len(segment) if segment.isascii() else len(segment.encode("utf-8", "surrogatepass"))
        line = 1 + before.count("\n")
        context = str(node)
        location = f"{tree.parse_name}:{line}:{column}"
        raise TemplateError(
            f"template: {location}: executing {quote(name)} at <{context}>: {message}",
            name=tree.parse_name,
            line=line,
            column=column,
            context=context,
            template=name,
            reason=message,
        )

    # --- walking ---------------------------------------------------------------------------

    def walk(self, dot: Any, node: n.Node) -> None:
        self.at(node)
        if isinstance(node, n.TextNode):
            self.out.append(node.text)
        elif isinstance(node, n.ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, value)
        elif isinstance(node, n.ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, n.IfNode):
            self.walk_if_or_with(False, dot, node)
        elif isinstance(node, n.RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, n.WithNode):
            self.walk_if_or_with(True, dot, node)
        elif isinstance(node, n.TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, n.BreakNode):
            raise _Break
        elif isinstance(node, n.ContinueNode):
            raise _Continue
        elif isinstance(node, n.CommentNode):
            pass
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, is_with: bool, dot: Any, node: n.BranchNode) -> None:
        mark = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if is_with else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: n.RangeNode) -> None:
        self.at(node)
        outer = self.mark()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            mark = self.mark()
            pipe = node.pipe
            decl = pipe.decl

            def one_iteration(index: Any, elem: Any) -> None:
                if decl:
                    if pipe.is_assign:
                        self.set_var(decl[0].ident[0], index if len(decl) > 1 else elem)
                    else:
                        self.set_top_var(1, elem)
                if len(decl) > 1:
                    if pipe.is_assign:
                        self.set_var(decl[1].ident[0], elem)
                    else:
                        self.set_top_var(2, index)
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                finally:
                    self.pop(mark)

            try:
                if isinstance(value, list | tuple):
                    if value:
                        for index, elem in enumerate(value):
                            one_iteration(index, elem)
                        return
                elif isinstance(value, dict):
                    if value:
                        for key, elem in sorted_items(value):
                            one_iteration(key, elem)
                        return
                elif is_int(value):
                    if len(decl) > 1:
                        self.errorf(f"can't use {sprint_value(value)} to iterate over more than one variable")
                    if value > 0:
                        for index in range(int(value)):
                            one_iteration(NO_VALUE, index)
                        return
                elif value is not NO_VALUE and value is not None:
                    self.errorf(f"range can't iterate over {sprint_value(value)}")
            except _Break:
                return
            if node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(outer)

    def walk_template(self, dot: Any, node: n.TemplateNode) -> None:
        self.at(node)
        tree = self.templates.get(node.name)
        if tree is None:
            self.errorf(f"template {quote(node.name)} not defined")
        if self.depth >= MAX_EXEC_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        value = self.eval_pipeline(dot, node.pipe)
        state = State(
            self.templates, self.funcs, self.missing_key, node.name, self.out, value, self.depth + 1
        )
        state.walk(value, tree.root)

    # --- evaluation ------------------------------------------------------------------------

    def eval_pipeline(self, dot: Any, pipe: n.PipeNode | None) -> Any:
        if pipe is None:
            return NO_VALUE
        self.at(pipe)
        value = MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:  # a nil interface{} unwraps to the invalid value
                value = NO_VALUE
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.ident[0], value)
            else:
                self.vars.append([variable.ident[0], value])
        return value

    def not_a_function(self, args: list[n.Node], final: Any) -> None:
        if len(args) > 1 or final is not MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: n.CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, n.FieldNode):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, n.ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, n.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, n.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, n.VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, n.BoolNode):
            return first.true
        if isinstance(first, n.DotNode):
            return dot
        if isinstance(first, n.NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, n.NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, n.StringNode):
            return first.text
        self.errorf(f"can't evaluate command {quote(str(first))}")

    def ideal_constant(self, constant: n.NumberNode) -> Any:
        self.at(constant)
        text = constant.text
        if constant.is_complex:
            return constant.complex128
        is_hex_int = len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(c in text for c in "pP")
        if (
            constant.is_float
            and not is_hex_int
            and not text.startswith("'")
            and any(c in text for c in ".eEpP")
        ):
            return constant.float64
        if constant.is_int:
            return constant.int64
        if constant.is_uint:
            self.errorf(f"{text} overflows int")
        return NO_VALUE

    def eval_field_node(self, dot: Any, field: n.FieldNode, args: list[n.Node] | None, final: Any) -> Any:
        self.at(field)
        return self.eval_field_chain(dot, dot, field, field.ident, args, final)

    def eval_chain_node(self, dot: Any, chain: n.ChainNode, args: list[n.Node] | None, final: Any) -> Any:
        self.at(chain)
        if not chain.field:
            self.errorf("internal error: no fields in evalChainNode")
        if isinstance(chain.node, n.NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.field, args, final)

    def eval_variable_node(
        self, dot: Any, variable: n.VariableNode, args: list[n.Node] | None, final: Any
    ) -> Any:
        self.at(variable)
        value = self.var_value(variable.ident[0])
        if len(variable.ident) == 1:
            self.not_a_function(args or [variable], final)
            return value
        return self.eval_field_chain(dot, value, variable, variable.ident[1:], args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: n.Node, idents: list[str], args: list[n.Node] | None, final: Any
    ) -> Any:
        slot = False
        for ident in idents[:-1]:
            receiver = self.eval_field(dot, ident, node, None, MISSING, receiver, slot)
            slot = True
        return self.eval_field(dot, idents[-1], node, args, final, receiver, slot)

    def eval_function(
        self, dot: Any, node: n.IdentifierNode, cmd: n.Node, args: list[n.Node] | None, final: Any
    ) -> Any:
        self.at(node)
        name = node.ident
        function = self.funcs.get(name)
        if function is None:
            self.errorf(f"{quote(name)} is not a defined function")
        return self.eval_call(dot, function, cmd, name, args, final)

    def eval_field(
        self,
        dot: Any,
        name: str,
        node: n.Node,
        args: list[n.Node] | None,
        final: Any,
        receiver: Any,
        slot: bool = False,
    ) -> Any:
        if receiver is NO_VALUE:
            if self.missing_key == "error":
                self.errorf(f"nil data; no entry for key {quote(name)}")
            return NO_VALUE
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        methods = getattr(receiver, "methods", None)
        if isinstance(methods, dict) and name in methods:
            return self.eval_call(dot, methods[name], node, name, args, final)
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        if isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.missing_key == "error":
                self.errorf(f"map has no entry for key {quote(name)}")
            if self.missing_key == "zero":
                return "" if isinstance(receiver, StringMap) else None
            return NO_VALUE
        typ = "interface {}" if slot and not isinstance(receiver, Namespace) else type_name(receiver)
        self.errorf(f"can't evaluate field {name} in type {typ}")

    def eval_call(
        self, dot: Any, function: GoFunc, node: n.Node, name: str, args: list[n.Node] | None, final: Any
    ) -> Any:
        arg_nodes = args[1:] if args is not None else []
        num_in = len(arg_nodes) + (0 if final is MISSING else 1)
        params = function.params
        if function.variadic is not None:
            num_fixed = len(params)
            if num_in < num_fixed:
                self.errorf(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(arg_nodes)}"
                )
        else:
            num_fixed = len(arg_nodes)
            if num_in != len(params):
                self.errorf(f"wrong number of args for {name}: want {len(params)} got {num_in}")

        if function.builtin and name in ("and", "or"):
            value: Any = NO_VALUE
            for arg in arg_nodes:
                value = self.eval_arg(dot, "value", arg)
                if truth(value) == (name == "or"):
                    return value
            if final is not MISSING:
                value = self.validate_type(final, "value")
            return value

        argv: list[Any] = []
        i = 0
        while i < num_fixed and i < len(arg_nodes):
            argv.append(self.eval_arg(dot, params[i], arg_nodes[i]))
            i += 1
        if function.variadic is not None:
            while i < len(arg_nodes):
                argv.append(self.eval_arg(dot, function.variadic, arg_nodes[i]))
                i += 1
        if final is not MISSING:
            if function.variadic is None:
                typ = params[-1]
            elif num_in - 1 < num_fixed:
                typ = params[num_in - 1]
            else:
                typ = function.variadic
            argv.append(self.validate_type(final, typ))
        try:
            return function.fn(*argv)
        except TemplateError:
            raise
        except RecursionError:
            raise
        except FunctionError as error:
            self.at(node)
            self.errorf(f"error calling {name}: {error}")
        except Exception as error:  # Go recovers a function's panic into an error the same way
            self.at(node)
            self.errorf(f"error calling {name}: {error}")

    def validate_type(self, value: Any, typ: str | None) -> Any:
        if typ is None:
            return value
        if value is NO_VALUE:
            if typ == "any":
                return None
            if typ == "value":
                return NO_VALUE
            if typ == "map":
                return {}
            if typ == "list":
                return []
            self.errorf(f"invalid value; expected {GO_TYPES[typ]}")
        if typ in ("any", "value"):
            return value
        if typ == "string":
            ok = isinstance(value, str)
        elif typ == "int":
            ok = is_int(value) and not isinstance(value, Int64)
        elif typ == "int64":
            ok = isinstance(value, Int64)
        elif typ == "float64":
            ok = isinstance(value, float)
        elif typ == "bool":
            ok = isinstance(value, bool)
        elif typ == "map":
            ok = isinstance(value, dict) and not isinstance(value, StringMap)
        elif typ == "list":
            ok = isinstance(value, list | tuple) and type_name(value) == "[]interface {}"
        else:
            ok = True
        if not ok:
            self.errorf(f"wrong type for value; expected {GO_TYPES[typ]}; got {receiver_type_name(value)}")
        return value

    def eval_arg(self, dot: Any, typ: str | None, node: n.Node) -> Any:
        self.at(node)
        if isinstance(node, n.DotNode):
            return self.validate_type(dot, typ)
        if isinstance(node, n.NilNode):
            if typ in ("any", "map", "list"):
                return None
            if typ == "value":
                return NO_VALUE
            self.errorf(f"cannot assign nil to {GO_TYPES.get(typ or '', typ)}")
        if isinstance(node, n.FieldNode):
            return self.validate_type(self.eval_field_node(dot, node, [node], MISSING), typ)
        if isinstance(node, n.VariableNode):
            return self.validate_type(self.eval_variable_node(dot, node, None, MISSING), typ)
        if isinstance(node, n.PipeNode):
            return self.validate_type(self.eval_pipeline(dot, node), typ)
        if isinstance(node, n.IdentifierNode):
            return self.validate_type(self.eval_function(dot, node, node, None, MISSING), typ)
        if isinstance(node, n.ChainNode):
            return self.validate_type(self.eval_chain_node(dot, node, None, MISSING), typ)
        if typ == "bool":
            if isinstance(node, n.BoolNode):
                return node.true
            self.errorf(f"expected bool; found {node}")
        if typ == "float64":
            if isinstance(node, n.NumberNode) and node.is_float:
                return node.float64
            self.errorf(f"expected float; found {node}")
        if typ in ("int", "int64"):
            if isinstance(node, n.NumberNode) and node.is_int:
                return Int64(node.int64) if typ == "int64" else node.int64
            self.errorf(f"expected integer; found {node}")
        if typ in ("any", "value"):
            return self.eval_empty_interface(dot, node)
        if typ == "string":
            if isinstance(node, n.StringNode):
                return node.text
            self.errorf(f"expected string; found {node}")
        self.errorf(f"can't handle {node} for arg of type {GO_TYPES.get(typ or '', typ)}")

    def eval_empty_interface(self, dot: Any, node: n.Node) -> Any:
        self.at(node)
        if isinstance(node, n.BoolNode):
            return node.true
        if isinstance(node, n.DotNode):
            return dot
        if isinstance(node, n.NumberNode):
            return self.ideal_constant(node)
        if isinstance(node, n.StringNode):
            return node.text
        self.errorf(f"can't handle assignment of {node} to empty interface argument")

    def print_value(self, node: n.Node, value: Any) -> None:
        self.at(node)
        if value is NO_VALUE:
            self.out.append("<no value>")
        elif isinstance(value, str):
            self.out.append(value)
        else:
            self.out.append(sprint_value(value))
