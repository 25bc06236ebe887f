"""``rows.where``: a restricted boolean expression, parsed, checked node by node, and re-emitted.

Only columns of the dataset, literals, comparisons, AND/OR/NOT, IN (a list of
literals), BETWEEN, IS [NOT] NULL and DATE literals are allowed. Anything
else — subqueries, function calls, several statements, comments — is refused.
The SQL that runs is generated from the checked tree, never the user's text.
"""

from __future__ import annotations

from datashare.errors import PolicyError

MAX_WHERE_LENGTH = 4000


def compile_where(text: str, columns: list[str]) -> str:
    """The checked expression as DuckDB SQL with every column quoted, or :class:`PolicyError`."""
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
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except (ParseError, TokenError) as exc:
        raise PolicyError(f"rows.where: cannot parse the expression ({str(exc).splitlines()[0][:200]})") from None
    if len(statements) != 1 or statements[0] is None:
        raise PolicyError("rows.where: exactly one expression is allowed (no ';')")
    tree = statements[0]
    known = set(columns)
    for node in tree.walk():
        if node.comments:
            raise PolicyError("rows.where: comments are not allowed")
        if not isinstance(node, allowed):
            raise PolicyError(f"rows.where: {node.key.upper()} is not allowed; use columns, literals, comparisons, "
                              "AND/OR/NOT, IN (…), BETWEEN, IS NULL and DATE '…'")
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                raise PolicyError("rows.where: qualified column names are not allowed")
            if node.name not in known:
                from difflib import get_close_matches

                close = get_close_matches(node.name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise PolicyError(f"rows.where: the dataset has no column {node.name!r}{hint}")
        if isinstance(node, exp.Cast):
            target = node.args.get("to")
            if not (isinstance(node.this, exp.Literal) and node.this.is_string and target is not None
                    and target.this == exp.DataType.Type.DATE):
                raise PolicyError("rows.where: the only cast allowed is a DATE 'yyyy-mm-dd' literal")
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            raise PolicyError("rows.where: IN takes a list of literals, not a query")
        if isinstance(node, exp.DataType) and node.this != exp.DataType.Type.DATE:
            raise PolicyError("rows.where: only DATE literals are allowed")
    if not isinstance(tree, (exp.Predicate, exp.Connector, exp.Not, exp.Paren, exp.Boolean, exp.Is, exp.In,
                             exp.Between)):
        raise PolicyError("rows.where: the expression must be a condition (true or false for each row)")
    return tree.sql(dialect="duckdb", identify=True)
