"""Unmatched replies: what came back and could not be posted waits for the admin team, who
file it into a client's feed (as policy allows) or discard it, audited."""

from portal.extensions import db
from portal.inbound import queue
from portal.models import Feed, InboundChannel, InboundMessage, InboundOutcome
from portal.reply_addresses import ReplyToken
from portal.storage import storage


def record(**fields):
    values = {
        "channel": InboundChannel.EMAIL, "dedupe_key": "a" * 64,
        "reason": "The reply address is not one the portal gave out", "raw": b"raw email",
        "sender": "someone@example.com",
    }
    return queue.record_unmatched(**{**values, **fields})


def test_an_unmatched_reply_is_queued_with_its_raw_email(app, business, household,
                                                         household_login):
    with app.app_context():
        token = ReplyToken(business.id, household.id, Feed.PRIVATE, household_login.id)
        row = record(token=token, text="The gate code changed", attachment_count=1)
        assert (row.outcome, row.business_id, row.client_id, row.feed, row.recipient_id) == (
            InboundOutcome.UNMATCHED, business.id, household.id, Feed.PRIVATE, household_login.id)
        assert storage().read(row.raw_key) == b"raw email"
        assert queue.find("a" * 64).id == row.id


def test_the_same_delivery_queued_twice_is_one_row_and_one_stored_file(app):
    with app.app_context():
        first = record()
        second = record(raw=b"raw email again")
        assert second.id == first.id
        assert db.session.query(InboundMessage).count() == 1
        assert storage().keys() == [first.raw_key]


def test_a_token_naming_rows_that_do_not_exist_is_queued_without_them(app, business):
    with app.app_context():
        row = record(token=ReplyToken(business.id, 999_999, Feed.CONVERSATION, 999_999))
        assert (row.business_id, row.client_id, row.recipient_id) == (business.id, None, None)
        other = record(dedupe_key="c" * 64,
                       token=ReplyToken(999_999, 999_999, Feed.CONVERSATION, 999_999))
        assert (other.business_id, other.client_id) == (None, None)


def test_nothing_found_for_an_unknown_key(app):
    with app.app_context():
        assert queue.find("b" * 64) is None
