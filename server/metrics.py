"""Prometheus metrics of one server, in a registry of its own (tests run many
servers in one process, so nothing goes in the global default registry)."""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

# Tick buckets around the 50 ms budget of a 20 Hz tick.
_TICK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25, 1.0)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tick_duration = Histogram("hamlet_tick_duration_seconds", "Time spent running one tick",
                                       buckets=_TICK_BUCKETS, registry=r)
        self.tick_lateness = Histogram("hamlet_tick_lateness_seconds",
                                       "How late a tick started against its schedule",
                                       buckets=_TICK_BUCKETS, registry=r)
        self.system_duration = Histogram("hamlet_system_duration_seconds", "Time per tick system",
                                         ["system"], buckets=_TICK_BUCKETS, registry=r)
        self.ticks_skipped = Counter("hamlet_ticks_skipped_total",
                                     "Ticks dropped from the schedule after falling far behind", registry=r)
        self.clients = Gauge("hamlet_clients_connected", "Open WebSocket connections", registry=r)
        self.players = Gauge("hamlet_players_joined", "Connections with a joined avatar", registry=r)
        self.entities = Gauge("hamlet_entities", "Entities in the world", registry=r)
        self.bytes_in = Counter("hamlet_bytes_in_total", "WebSocket payload bytes received", registry=r)
        self.bytes_out = Counter("hamlet_bytes_out_total", "WebSocket payload bytes sent", registry=r)
        self.messages_in = Counter("hamlet_messages_in_total", "Client messages accepted", ["type"], registry=r)
        self.rejected = Counter("hamlet_messages_rejected_total", "Client messages rejected",
                                ["reason"], registry=r)
        self.closes = Counter("hamlet_closes_total", "Connections closed by the server", ["code"], registry=r)
        self.connections_refused = Counter("hamlet_connections_refused_total",
                                           "Connections refused at the handshake", ["reason"], registry=r)
        self.commit_duration = Histogram("hamlet_commit_duration_seconds", "Per-tick database commit",
                                         buckets=_TICK_BUCKETS, registry=r)
        self.state_every_ticks = Gauge("hamlet_state_every_ticks",
                                       "Ticks between state updates to a client (raised under load)", registry=r)
        self.trades = Counter("hamlet_trades_total", "Goods or coins that changed hands, by kind "
                              "(give, buy, sell, offer)", ["kind"], registry=r)
        self.coins_traded = Counter("hamlet_coins_traded_total", "Coins that changed hands in trades", registry=r)
        self.input_queue = Gauge("hamlet_input_queue_depth", "Inputs waiting for the next tick", registry=r)

    def watch_minds(self, stats: Callable[[], dict[str, dict[str, int]]]) -> None:
        """Export the NPC minds' counts (agents/minds.MindsSystem.stats), read
        at scrape time: the reply gate's verdicts and what became of each
        person's turn to be answered."""
        self.registry.register(_MindsCollector(stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _MindsCollector:
    def __init__(self, stats: Callable[[], dict[str, dict[str, int]]]) -> None:
        self.stats = stats

    def collect(self):
        s = self.stats()
        gate = CounterMetricFamily("hamlet_npc_line_gate", "Generated NPC lines judged by the reply gate",
                                   labels=["verdict"])
        for verdict, n in s.get("gate", {}).items():
            gate.add_metric([verdict], n)
        replies = CounterMetricFamily("hamlet_npc_replies", "People's turns to be answered by an NPC, by outcome",
                                      labels=["outcome"])
        for outcome, n in s.get("replies", {}).items():
            replies.add_metric([outcome], n)
        return [gate, replies]
