"""chaos.proxy's modules import each other in one direction only, and never
upward into chaos.cli (imports under TYPE_CHECKING count too)."""

from __future__ import annotations

from pathlib import Path

from roomquake_testutil import find_cycle, import_graph

PACKAGE = Path(__file__).resolve().parents[3] / "chaos" / "proxy"


def test_no_import_cycle_inside_chaos_proxy():
    edges = import_graph(PACKAGE)
    assert "chaos.proxy.toxics.base" in edges  # the graph was really read
    assert find_cycle(edges) == []


def test_chaos_proxy_never_imports_chaos_cli():
    everything = import_graph(PACKAGE.parent)
    upward = {name: sorted(m for m in imported if m == "chaos.cli" or m.startswith("chaos.cli."))
              for name, imported in everything.items() if name.startswith("chaos.proxy")}
    assert not {k: v for k, v in upward.items() if v}


def test_toxics_depend_on_their_contract_only():
    everything = import_graph(PACKAGE.parent)
    allowed = {"chaos.proxy.toxics.base", "chaos.proxy.gojson", "chaos.proxy.toxics"}
    for name, imported in everything.items():
        if name.startswith("chaos.proxy.toxics."):
            assert {m for m in imported if m.startswith("chaos.proxy")} <= allowed, name
