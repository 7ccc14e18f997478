"""Replies come home: emails and texts a person sends back to the portal.

`mail.parse` reads a raw RFC 5322 message; `ingest.ingest_email` does everything else with it
(the receiver, the IMAP fetcher and `flask mail ingest` all call it); `texts` does the same for
a text message from the SMS provider; `queue` is the Unmatched replies queue of the admin team.
"""
