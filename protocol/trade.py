"""What the wire says about the economy: the bounds of every count, price and
offer, the reach within which things change hands, how long offers live,
and the states an offer goes through.

These are protocol facts: clients check them before sending and the world
(`server/world/economy.py`) enforces the same values, so they are declared
here once. Clients read them from `/protocol.json` (`economy`).
"""
from __future__ import annotations

# The pseudo-item that names coins in `give` and in trade events.
COINS = "coins"

# Item kinds are short lowercase words (`bread`, `iron_nails`); the server's
# goods file lists the ones that exist.
ITEM_RULE = "lowercase letters, digits and `_`, starting with a letter"
MAX_ITEM_NAME = 24

# One message moves at most this many of one item (or coins, in `give`):
# a full stack, so nothing a holder can keep needs two messages, and one
# message's effect stays bounded.
MAX_COUNT = 999

# Prices and coin amounts in one message: a book costs tens of coins, so
# 100,000 is far above any real price while keeping arithmetic small.
MAX_PRICE = 100_000

# Lines on each side of an offer: enough for a barter of a few kinds of
# goods; it keeps an offer one small frame.
MAX_OFFER_LINES = 4

# How many of one item a holder can keep: a shop's store room, not a
# warehouse; refused past it with `full`.
MAX_STACK = 999

# Coins one holder can keep (well within a JavaScript number's exact range);
# refused past it with `full`.
MAX_COINS = 1_000_000_000

# Things change hands between people this close (Chebyshev distance, in
# tiles): next to each other, or across a shop's counter.
HANDOVER_RANGE = 3

# An open offer lapses after this many ticks (60 s at 20 Hz): long enough
# to read it and answer, short enough that goods are not promised for long.
OFFER_TTL_TICKS = 1200

# Open offers one player may have made and not yet seen answered: a few
# deals at once, not a flood of promises.
MAX_OPEN_OFFERS = 4

# The states of an offer, in `offer` messages.
OFFER_STATES = ("open", "accepted", "declined", "withdrawn", "expired")
