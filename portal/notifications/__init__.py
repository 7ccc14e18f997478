"""Notifications: the outbox written with each message, and the worker that delivers it."""
