"""One world split into regions across processes and machines, over NATS.

`regions.py` says which region owns which AOI cell; `lease.py` makes one
process the owner of a region (a lease in a JetStream key-value bucket);
`wire.py` names the subjects and bounds the messages; `region.py` runs a
region: its own tick and persistence (on the world's clock, `clock.py`),
handoffs of entities that cross a border (`region_systems.py`), and the
cells near its borders published for its neighbours, who keep them as
ghosts (`ghosts.py`) and show them to their clients (`border_view.py`);
`region_sessions.py` and `remote_client.py` are its side of the gateways,
and `session_handoffs.py` moves a player's session with its avatar.
`gateway.py` holds the clients' sockets (and serves the browser client)
and routes each session to its avatar's region (`gateway_routes.py`,
`gateway_bus.py`). Nothing here is imported by a one-process `hamlet
serve`.
"""
