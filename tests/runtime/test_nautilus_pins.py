"""Private NautilusTrader internals the runtime depends on, pinned: an upgrade that moves one fails here, loudly.

The runtime reaches into NautilusTrader 1.221.0 where its public API has no way to do what
is needed (each use carries a comment naming the version). Should any of these change in a
newer release, this test names what moved; fix the use, then the pin.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import nautilus_trader
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient as StockSandbox
from nautilus_trader.common.component import MessageBus, TestClock
from nautilus_trader.live.execution_engine import LiveExecutionEngine
from nautilus_trader.model.identifiers import ClientId, TraderId

from strategy_runtime import reporter
from strategy_runtime.catalog import prepare_catalog
from strategy_runtime.node import SHUTDOWN_TOPIC, build_node
from strategy_runtime.replay import REPLAY_CLIENT_ID
from tests.support.runtime import paper_manifest, runtime_config

PINNED_VERSION = "1.221.0"


def test_the_nautilus_trader_version_is_the_one_these_pins_were_checked_against():
    assert nautilus_trader.__version__ == PINNED_VERSION, (
        f"NautilusTrader {nautilus_trader.__version__} is not {PINNED_VERSION}: re-check every private "
        "attribute this file pins (and the behaviour notes in docs/runtime.md), then update PINNED_VERSION"
    )


async def test_the_engines_private_attributes_the_runtime_uses_exist(tmp_path):
    config = runtime_config(paper_manifest(bars=100), tmp_path / "catalog")
    node = build_node(config, catalog=prepare_catalog(config))
    try:
        kernel = node.kernel
        # node.py: the built clients (StrategyNode.sandbox, the replay client after build)
        assert isinstance(kernel.exec_engine._clients, dict)
        assert isinstance(kernel.data_engine._clients[ClientId(REPLAY_CLIENT_ID)], object)
        assert node.sandbox is not None
        # node.py: the kernel's ShutdownSystem handler, replaced by the runtime's
        assert callable(kernel._on_shutdown_system)
        assert SHUTDOWN_TOPIC == "commands.system.shutdown"
        # sandbox.py: the execution engine's synchronous event handler (paper parity)
        assert callable(kernel.exec_engine._handle_event_with_tracking)
    finally:
        node.dispose()


def test_the_inferred_fill_hook_is_where_reconciliation_makes_inferred_fills():
    # reporter.py wraps LiveExecutionEngine._generate_inferred_fill(order, report, instrument)
    method = getattr(LiveExecutionEngine, reporter.INFERRED_FILL_METHOD)
    assert list(inspect.signature(method).parameters) == ["self", "order", "report", "instrument"]
    source = inspect.getsource(LiveExecutionEngine._reconcile_order_report)
    assert f"self.{reporter.INFERRED_FILL_METHOD}(order, report, instrument)" in source


def test_the_stock_sandbox_client_sets_up_only_what_the_fixed_client_does():
    # sandbox.py skips the stock __init__ (it crashes on leverages) and does its work itself:
    # if a newer stock __init__ sets up more, the fixed client would lack it.
    tree = ast.parse(textwrap.dedent(inspect.getsource(StockSandbox.__init__)))
    assigned = {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    assert assigned == {"test_clock", "exchange", "_client"}


def test_a_wildcard_subscription_made_after_a_topic_was_published_misses_it():
    # NautilusTrader 1.221's MessageBus.subscribe calls is_matching with its arguments swapped, so a
    # wildcard subscription made after a topic was published (to some subscriber) never receives that
    # topic. The risk guard (attach) and the halt (TradingHalt.__init__) therefore subscribe to order
    # and position events before the node starts. Should this pin fail, the workaround can go.
    bus = MessageBus(TraderId("PIN-001"), TestClock())
    early: list[int] = []
    late: list[int] = []
    bus.subscribe("events.order.*", early.append)
    bus.publish("events.order.S-000", 1)
    bus.subscribe("events.order.*", late.append)
    bus.publish("events.order.S-000", 2)  # a topic published before the late subscription
    bus.publish("events.order.S-001", 3)  # a topic first published after it
    assert early == [1, 2, 3]
    assert late == [3]
