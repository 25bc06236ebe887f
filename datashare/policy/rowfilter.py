"""``rows.where``: a restricted boolean expression, parsed, checked node by node, and re-emitted.

Only columns of the dataset, literals, comparisons, AND/OR/NOT, IN (a list of
literals), BETWEEN, IS [NOT] NULL and DATE literals are allowed. Anything
else — subqueries, function calls, several statements, comments — is refused.
The SQL that runs is generated from the checked tree, never the user's text.

Checks come in three layers, so a policy file can be checked without a
dataset: the grammar (:func:`parse_where`, once, when the policy is loaded),
then the columns the dataset has, then whether each comparison fits the
columns' types (:func:`where_problems`: a text column compared with a number
would fail half-way through an export, with a cell value in DuckDB's message).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from datashare.core.hints import did_you_mean
from datashare.core.sql import value_kind
from datashare.errors import PolicyError

if TYPE_CHECKING:
    from sqlglot import exp

MAX_WHERE_LENGTH = 4000
# The parser recurses once per level: deeper input would exhaust Python's stack (a RecursionError, not a message).
MAX_WHERE_DEPTH = 24  # nested parentheses plus NOT operators
_TOO_DEEP = f"rows.where: nested too deeply (at most {MAX_WHERE_DEPTH} levels of parentheses and NOT together)"
_NOT_WORD = re.compile(r"(?<![A-Za-z0-9_])not(?![A-Za-z0-9_])", re.IGNORECASE)


def _nesting(text: str) -> int:
    """The deepest nesting of parentheses plus the number of NOTs, outside quoted strings and names."""
    depth = deepest = nots = 0
    quote = None
    for index, char in enumerate(text):
        if quote is not None:
            quote = None if char == quote else quote  # a doubled quote closes and reopens: the same count
            continue
        if char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
        elif char in "nN" and _NOT_WORD.match(text, index):
            nots += 1
    return deepest + nots

_Operand = tuple[str, str, str | None]  # kind, description, literal text


def parse_where(text: str) -> exp.Expression:
    """The checked tree, or :class:`PolicyError` for anything outside the grammar."""
    # deferred: sqlglot is heavy to import and only a policy with rows.where needs it
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    allowed = (
        exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg,
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.And, exp.Or, exp.Not,
        exp.In, exp.Between, exp.Is, exp.Cast, exp.DataType,
    )
    if len(text) > MAX_WHERE_LENGTH:
        raise PolicyError(f"rows.where: longer than {MAX_WHERE_LENGTH} characters")
    if _nesting(text) > MAX_WHERE_DEPTH:
        raise PolicyError(_TOO_DEEP)
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except (ParseError, TokenError) as exc:
        raise PolicyError(f"rows.where: cannot parse the expression ({str(exc).splitlines()[0][:200]})") from None
    except RecursionError:
        raise PolicyError(_TOO_DEEP) from None
    if len(statements) != 1 or statements[0] is None:
        raise PolicyError("rows.where: exactly one expression is allowed (no ';')")
    tree = statements[0]
    for node in tree.walk():
        if node.comments:
            raise PolicyError("rows.where: comments are not allowed")
        if not isinstance(node, allowed):
            raise PolicyError(f"rows.where: {node.key.upper()} is not allowed; use columns, literals, comparisons, "
                              "AND/OR/NOT, IN (…), BETWEEN, IS NULL and DATE '…'")
        if isinstance(node, exp.Column) and (node.table or node.args.get("db") or node.args.get("catalog")):
            raise PolicyError("rows.where: qualified column names are not allowed")
        if isinstance(node, exp.Cast):
            target = node.args.get("to")
            if not (isinstance(node.this, exp.Literal) and node.this.is_string and target is not None
                    and target.this == exp.DataType.Type.DATE):
                raise PolicyError("rows.where: the only cast allowed is a DATE 'yyyy-mm-dd' literal")
            try:
                dt.date.fromisoformat(node.this.this)
            except ValueError:
                raise PolicyError(f"rows.where: DATE {node.this.sql()} is not a date like '2020-01-31'") from None
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            raise PolicyError("rows.where: IN takes a list of literals, not a query")
        if isinstance(node, exp.In) and not node.expressions:
            raise PolicyError("rows.where: IN needs at least one value")
        if isinstance(node, exp.Neg) and not (isinstance(node.this, exp.Literal) and not node.this.is_string):
            raise PolicyError("rows.where: a minus sign goes only before a number")
        if isinstance(node, exp.DataType) and node.this != exp.DataType.Type.DATE:
            raise PolicyError("rows.where: only DATE literals are allowed")
    if not isinstance(tree, (exp.Predicate, exp.Connector, exp.Not, exp.Paren, exp.Boolean, exp.Is, exp.In,
                             exp.Between)):
        raise PolicyError("rows.where: the expression must be a condition (true or false for each row)")
    return tree


def _unknown_columns(tree: exp.Expression, known: set[str]) -> list[str]:
    # deferred: sqlglot is heavy to import and only a policy with rows.where needs it
    from sqlglot import exp

    problems = []
    for column in tree.find_all(exp.Column):
        if column.name not in known:
            hint = did_you_mean(column.name, known, before=" (", after=")")
            problems.append(f"rows.where: the dataset has no column {column.name!r}{hint}")
    return problems


def _operand(node: exp.Expression, types: dict[str, str]) -> _Operand:
    """(kind, description, literal text) of one side of a comparison; kind "any" fits everything."""
    # deferred: sqlglot is heavy to import and only a policy with rows.where needs it
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Column):
        return value_kind(types[node.name]), f"column {node.name!r} ({types[node.name]})", None
    if isinstance(node, exp.Cast):
        return "date", f"DATE {node.this.sql()}", None
    if isinstance(node, exp.Boolean):
        return "boolean", node.sql(), None
    if isinstance(node, exp.Neg) or (isinstance(node, exp.Literal) and not node.is_string):
        return "number", f"the number {node.sql()}", None
    if isinstance(node, exp.Literal):
        return "text", f"the text {node.sql()}", node.this
    return "any", node.sql(), None


def _fits(left: _Operand, right: _Operand) -> bool:
    (a, _, _), (b, _, text) = left, right
    if "any" in (a, b) or "other" in (a, b) or a == b:
        return True
    if b == "text" and text is not None:  # DuckDB casts a quoted literal to the column's type
        parse = _LITERAL_PARSERS.get(a)
        try:
            return parse is not None and (parse(text) is not None)
        except ValueError:
            return False
    return False


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "t", "f"):
        raise ValueError(text)
    return True


_LITERAL_PARSERS = {"date": dt.date.fromisoformat, "number": float, "boolean": _boolean}


def _type_problems(tree: exp.Expression, types: dict[str, str]) -> list[str]:
    # deferred: sqlglot is heavy to import and only a policy with rows.where needs it
    from sqlglot import exp

    problems = []
    comparisons = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In)
    for node in tree.find_all(*comparisons):
        others = ([node.args["low"], node.args["high"]] if isinstance(node, exp.Between)
                  else node.expressions if isinstance(node, exp.In) else [node.expression])
        left = _operand(node.this, types)
        for other in others:
            right = _operand(other, types)
            first, second = (left, right) if left[2] is None else (right, left)  # the literal text goes second
            if not _fits(first, second):
                problems.append(f"rows.where: {first[1]} cannot be compared with {second[1]}")
    return problems


def where_problems(tree: exp.Expression, column_types: dict[str, str]) -> list[str]:
    """Every problem fitting a parsed expression to a dataset's ``{column: DuckDB type}``; empty when it fits."""
    return _unknown_columns(tree, set(column_types)) or _type_problems(tree, column_types)


def where_columns(tree: exp.Expression) -> list[str]:
    """The columns a parsed expression names, sorted."""
    # deferred: sqlglot is heavy to import and only a policy with rows.where needs it
    from sqlglot import exp

    return sorted({column.name for column in tree.find_all(exp.Column)})


def compile_where(tree: exp.Expression, columns: list[str], engine: str = "duckdb") -> str:
    """A parsed expression as the engine's SQL (``duckdb`` or ``spark``) with every column quoted, or
    :class:`PolicyError` for an unknown column.

    The expression holds only columns, literals, comparisons and logic (see
    :func:`parse_where`), which sqlglot writes alike for both engines."""
    problems = _unknown_columns(tree, set(columns))
    if problems:
        raise PolicyError(problems[0])
    return tree.sql(dialect=engine, identify=True)


def column_inequality(text: str) -> tuple[str, str] | None:
    """``(greater, lesser)`` when ``text`` is just one column compared with another (``a >= b``, ``b < a``…)."""
    # deferred: sqlglot is heavy to import and only a policy with rows.where needs it
    from sqlglot import exp

    tree = parse_where(text)
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if not isinstance(tree, (exp.GT, exp.GTE, exp.LT, exp.LTE)):
        return None
    left, right = tree.this, tree.expression
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)) or left.name == right.name:
        return None
    return (left.name, right.name) if isinstance(tree, (exp.GT, exp.GTE)) else (right.name, left.name)
