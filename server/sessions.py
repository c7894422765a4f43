"""Accounts and sessions: who owns which avatar, tokens, the grace period.

A token is 32 random URL-safe characters, shown to its owner once (in
`welcome`) and stored only as a SHA-256 hash. A session outlives its
connection for `grace_s` seconds so a client that drops can resume the same
avatar; after that the avatar leaves the world and the account keeps its
last position for the next join.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from server.persistence import Account, Database


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Session:
    account: Account
    conn: Any | None  # the live connection, or None while within the grace period
    away_since: float | None = None


class Sessions:
    def __init__(self, db: Database, grace_s: float) -> None:
        self.db = db
        self.grace_s = grace_s
        self.by_entity: dict[int, Session] = {}
        self._away: dict[int, Session] = {}  # detached, in their grace period
        self._next_account_id = db.next_account_id()
        self.dirty_accounts: list[Account] = []  # to write in this tick's commit
        self._pending_names: set[str] = set()  # accounts created this tick, not yet committed

    def find_by_token(self, token: str) -> Account | None:
        digest = hash_token(token)
        account = self.db.account_by_token_hash(digest)
        for s in self.by_entity.values():  # accounts created this tick are not in the db yet
            if account is None and hmac.compare_digest(s.account.token_hash, digest):
                account = s.account
        if account is None or not hmac.compare_digest(account.token_hash, digest):
            return None
        live = self.by_entity.get(account.entity)
        return live.account if live else account

    def name_is_held(self, name: str) -> bool:
        key = name.casefold()
        return key in self._pending_names or self.db.account_by_name(name) is not None

    def create_account(self, name: str, entity: int, x: int, y: int) -> tuple[Account, str]:
        token = new_token()
        account = Account(self._next_account_id, name, hash_token(token), entity, x, y)
        self._next_account_id += 1
        self._pending_names.add(name.casefold())
        self.dirty_accounts.append(account)
        return account, token

    def rotate_token(self, account: Account) -> str:
        """A resumed session gets a fresh token: an old one seen by someone
        else stops working."""
        token = new_token()
        account.token_hash = hash_token(token)
        self.dirty_accounts.append(account)
        return token

    def attach(self, account: Account, conn: Any) -> Session:
        session = self.by_entity.get(account.entity)
        if session is None:
            session = Session(account, conn)
            self.by_entity[account.entity] = session
        else:
            session.conn = conn
            session.away_since = None
            self._away.pop(account.entity, None)
        return session

    def detach(self, entity: int, now: float) -> Session | None:
        session = self.by_entity.get(entity)
        if session is not None:
            session.conn = None
            session.away_since = now
            self._away[entity] = session
        return session

    def expired(self, now: float) -> list[Session]:
        """Sessions away past the grace period (called every tick: it looks at
        the away ones only, not at every session)."""
        return [s for s in self._away.values()
                if s.conn is None and s.away_since is not None and now - s.away_since > self.grace_s]

    def end(self, entity: int, x: int, y: int) -> None:
        self._away.pop(entity, None)
        session = self.by_entity.pop(entity, None)
        if session is not None:
            session.account.x, session.account.y = x, y
            self.dirty_accounts.append(session.account)

    def take_dirty(self) -> list[Account]:
        dirty, self.dirty_accounts = self.dirty_accounts, []
        self._pending_names.clear()
        return dirty
