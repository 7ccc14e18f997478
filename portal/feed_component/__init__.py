"""The feed component, which several blueprints show: reading a feed (query, delivery lines)
and rendering a client's page with one feed open (views).

Not a blueprint: the feeds, messages, clients and files blueprints each use it, and none of
them imports another.
"""
