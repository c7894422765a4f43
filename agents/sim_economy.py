"""The economy in a headless simulation: trades and coins that changed
hands, what workplaces made and NPCs used up, each shop's prices and every
holder's coins over game time; the `economy` section of summary.json and
the economy.png plot."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.world.world import World

# Prices and coins are sampled this often (game minutes): a game day is
# 1,440 minutes, so a day's run keeps 96 points per series.
SAMPLE_EVERY_MIN = 15.0


@dataclass
class EconomyRecord:
    trades: Counter[str] = field(default_factory=Counter)       # by kind: give, buy, sell, offer
    coins_traded: int = 0
    goods_traded: Counter[str] = field(default_factory=Counter)  # item -> n that changed hands
    minute: list[float] = field(default_factory=list)            # sample times
    prices: dict[str, list[int]] = field(default_factory=dict)   # "keeper item" -> price at each sample
    coins: dict[str, list[int]] = field(default_factory=dict)    # holder name -> coins at each sample
    _next_sample: float = -1.0

    def observe(self, world: World) -> None:
        """After each tick: count its trades; sample prices and coins now and then."""
        eco = world.economy
        for t in eco.trades:
            self.trades[t.kind] += 1
            self.coins_traded += t.coins + t.back_coins
            for item, n in (*t.goods, *t.back):
                self.goods_traded[item] += n
        if world.game_minutes < self._next_sample:
            return
        self._next_sample = world.game_minutes + SAMPLE_EVERY_MIN
        self.minute.append(world.game_minutes)
        for _, shop in sorted(eco.catalog.shops.items()):
            keeper = world.find_by_name(shop.keeper)
            for item in shop.sells:
                q = eco.quote(keeper, item) if keeper is not None else None
                self.prices.setdefault(f"{shop.keeper} {item}", []).append(q[0] if q else 0)
        for e in sorted(world.entities.values(), key=lambda e: e.id):
            self.coins.setdefault(e.name, []).append(eco.purse(e.id).coins)

    def summary(self, world: World, inputs: dict[str, int]) -> dict[str, Any]:
        """`inputs`: how many of each logged input kind the run applied."""
        eco = world.economy
        holders = {e.name: {"coins": eco.purse(e.id).coins, **dict(sorted(eco.purse(e.id).goods.items()))}
                   for e in sorted(world.entities.values(), key=lambda e: e.id)}
        return {
            "trades": dict(self.trades), "coins_traded": self.coins_traded,
            "goods_traded": dict(sorted(self.goods_traded.items())),
            "productions": inputs.get("produce", 0), "meals_and_uses": inputs.get("consume", 0),
            "prices_end": {k: v[-1] for k, v in self.prices.items() if v},
            "prices_range": {k: [min(v), max(v)] for k, v in self.prices.items() if v},
            "holdings_end": holders,
        }

    def plot(self, out: Path) -> str | None:
        if not self.minute:
            return None
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
        for name, series in self.coins.items():
            axes[0].plot(self.minute[-len(series):], series, lw=1, label=name)
        axes[0].set_ylabel("coins")
        axes[0].legend(fontsize=7, ncol=4)
        for name, series in self.prices.items():
            axes[1].plot(self.minute[-len(series):], series, lw=1, drawstyle="steps-post", label=name)
        axes[1].set_ylabel("shop price (coins)")
        axes[1].set_xlabel("game time (minutes since midnight)")
        axes[1].legend(fontsize=7, ncol=3)
        fig.suptitle("Hamlet simulation: coins and prices over game time")
        fig.tight_layout()
        fig.savefig(out / "economy.png", dpi=90)
        plt.close(fig)
        return "economy.png"
