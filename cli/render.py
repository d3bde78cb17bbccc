"""What ``bss`` shows a person: rich tables and trees (``--json`` bypasses all of it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.tree import Tree

MIRROR = "[magenta]⇄ mirror[/]"


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(
            column,
            justify="right" if column in _NUMERIC else "left",
            # on a narrow terminal an id is folded onto more lines, never cut, and no column
            # shrinks below its heading (rich would squeeze the others to nothing)
            overflow="fold" if column in _IDS else "ellipsis",
            min_width=_MIN_WIDTH.get(
                column, len(column) if column in _IDS else max(len(column), 6)
            ),
        )
    for row in rows:
        out.add_row(*("" if cell is None else str(cell) for cell in row))
    return out


#: an invoice number (INV-000001) is short enough to keep whole
_MIN_WIDTH = {"number": 10}
_IDS = {"id", "number", "account", "message", "source", "mirror", "key"}
_NUMERIC = {
    "quantity",
    "unit price",
    "amount",
    "total",
    "subtotal",
    "tax",
    "revenue",
    "cost",
    "margin",
    "margin %",
    "lines",
    "count",
    "receives",
    "subs",
}


def tenant_label(tenant: Mapping[str, Any]) -> str:
    marks = []
    if tenant.get("backordering"):
        marks.append("[green]back ordering[/]")
    if tenant.get("status") and tenant.get("status") != "active":
        marks.append(str(tenant["status"]))
    extra = f"  {' · '.join(marks)}" if marks else ""
    return f"[bold]{tenant['name']}[/] [dim]{tenant['id']} {tenant.get('currency', '')}[/]{extra}"


def account_label(account: Mapping[str, Any]) -> str:
    mark = f"  {MIRROR}" if account.get("mirrored") else ""
    child = f"  → tenant {account['child_tenant_id']}" if account.get("child_tenant_id") else ""
    return f"{account['name']} [dim]{account['kind']} {account['id']}[/]{child}{mark}"


def account_forest(accounts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The flat list as trees: ``{"account": ..., "children": [...]}``, roots those whose
    parent is not in the list; siblings by name."""
    by_id: dict[str, dict[str, Any]] = {a["id"]: {"account": a, "children": []} for a in accounts}
    roots: list[dict[str, Any]] = []
    for node in by_id.values():
        parent = node["account"].get("parent_account_id")
        (by_id[parent]["children"] if parent in by_id else roots).append(node)
    for node in by_id.values():
        node["children"].sort(key=lambda n: n["account"]["name"])
    return sorted(roots, key=lambda n: n["account"]["name"])


def tenant_tree(data: Mapping[str, Any]) -> Tree:
    """``data``: ``{"tenant", "child_tenants", "accounts"}`` as ``bss tree --json`` prints it."""
    tenant = data.get("tenant")
    root = Tree(tenant_label(tenant) if tenant else "[bold]Tenants[/]")
    children = data.get("child_tenants") or []
    if children:
        branch = root.add("[cyan]child tenants[/]")
        for child in children:
            branch.add(tenant_label(child))
    forest = data.get("accounts")
    if forest is not None:
        branch = root.add(f"[cyan]accounts[/] [dim]({_count(forest)})[/]")
        for node in forest:
            _add(branch, node)
    return root


def _add(parent: Tree, node: Mapping[str, Any]) -> None:
    branch = parent.add(account_label(node["account"]))
    for child in node["children"]:
        _add(branch, child)


def _count(forest: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 + _count(n["children"]) for n in forest)


def invoices_table(title: str, invoices: Iterable[Mapping[str, Any]]) -> Table:
    return table(
        title,
        ["id", "number", "status", "account", "bill to", "period", "total"],
        (
            (
                i["id"],
                i.get("number"),
                i["status"],
                i["account_id"],
                i.get("bill_to", {}).get("name") if isinstance(i.get("bill_to"), dict) else "",
                f"{i['period_start']} – {i['period_end']}",
                f"{i['total']} {i['currency']}",
            )
            for i in invoices
        ),
    )
