from portal.extensions import db
from portal.models import Client, Feed, Message, User, utcnow
from portal.services import audit


def post_message(author: User, client: Client, feed: Feed, text: str) -> Message:
    message = Message(
        business_id=client.business_id,
        client_id=client.id,
        feed=feed,
        author_id=author.id,
        text=text,
    )
    db.session.add(message)
    db.session.commit()
    return message


def delete_message(actor: User, message: Message) -> Message:
    """Erases the text (not just hides it) and records who did it."""
    message.text = None
    message.deleted_at = utcnow()
    message.deleted_by_id = actor.id
    audit.record(
        message.business_id, actor, "message.deleted", "message", message.id,
        client_id=message.client_id, feed=message.feed.value, author_id=message.author_id,
    )
    db.session.commit()
    return message
