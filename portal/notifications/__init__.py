"""Notifications: the outbox written with each message, and the worker that delivers it.

Each module imports only those listed below it:

    worker         the loop: claims due rows from the outboxes, dispatches them to the channels
    account_mail   invitations and password emails: their own outbox rows, settled like the rest
    outbox         a notification row's whole life: who is told, written, claimed, settled,
                   retried, cancelled, listed as failed
    email, sms, push   the channels: each takes Notices; raises PermanentError or TransientError
    notices        what a notification says about its message (Notice), built once per message
    errors         PermanentError, TransientError
"""
