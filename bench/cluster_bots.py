"""The crash run's bots for bench/cluster.py (run in a child process it
starts): each connects to the gateway, walks to random tiles on both sides
of the border and says a line between walks, waiting for each line's ack;
closed (a region killed under it), it resumes with its token. Each bot's
report: its entity, every acknowledged line (chat id, text), resumes,
closes by code and when they came, errors by code."""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter


async def one_bot(i: int, url: str, stop_at: float, seed: int) -> dict:
    from client_demo.client import HamletClient, ServerError
    from server.world.village import village

    m = village()
    rng = random.Random(seed * 7919 + i)
    targets = [(x, y) for y in range(20, 80) for x in range(44, 85) if m.walkable(x, y)]
    name = f"cb{i}"
    out = {"name": name, "entity": None, "acked": [], "resumes": 0, "closes": Counter(), "errors": Counter(),
           "back_at": [], "close_log": []}
    c = None
    k = 0
    while time.time() < stop_at:
        try:
            if c is None or c.closed:
                if c is not None and (not out["close_log"] or out["close_log"][-1][0] != id(c)):  # once per close
                    out["closes"][str(c.close_code)] += 1
                    out["close_log"].append((id(c), time.time(), c.close_code, c.close_reason))
                new = await HamletClient.connect(url)
                try:
                    w = await new.join(name, token=c.token if c is not None else None)
                except BaseException:
                    await new.close()
                    raise
                if c is not None:
                    out["resumes"] += 1
                    out["back_at"].append(time.time())
                c = new
                out["entity"] = w["id"]
                continue
            await c.move(rng.choice(targets))
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            text = f"{name} line {k}"
            k += 1
            out["acked"].append([await c.say(text), text])
        except ServerError as exc:
            out["errors"][exc.code] += 1
            await asyncio.sleep(0.25)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.25)
        except Exception as exc:  # websockets' own errors while a region restarts
            out["errors"][type(exc).__name__] += 1
            await asyncio.sleep(0.25)
    if c is not None:
        await c.close()
    return out


async def bots_main(url: str, n: int, duration: float, seed: int) -> list[dict]:
    stop_at = time.time() + duration

    async def later(i: int) -> dict:
        await asyncio.sleep(i * 0.02)
        return await one_bot(i, url, stop_at, seed)
    return await asyncio.gather(*(later(i) for i in range(n)))
