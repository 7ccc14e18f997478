from flask import abort, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from portal.extensions import csrf
from portal.inbound import texts
from portal.notifications import outbox, sms
from portal.sms import bp


@bp.route(sms.STATUS_PATH, methods=["POST"])
@csrf.exempt
def status():
    """Twilio's status callback for a text the portal sent ("delivered", "undelivered", …).

    No login and no CSRF token: Twilio signs the request with the account's auth token
    (X-Twilio-Signature), and anything unsigned or signed otherwise is refused.
    """
    _require_twilio_signature()
    message_sid, reported = request.form.get("MessageSid"), request.form.get("MessageStatus")
    if message_sid and reported:
        outbox.record_provider_status(message_sid, reported, request.form.get("ErrorCode"))
    return "", 204


@bp.route(sms.INBOUND_PATH, methods=["POST"])
@csrf.exempt
def receive():
    """A text someone sent to the portal's number (Twilio's incoming message webhook), signed
    as the status callback is. Answers TwiML: empty, or a reply to HELP."""
    _require_twilio_signature()
    outcome = texts.ingest_text(request.form)
    answer = MessagingResponse()
    if outcome.reply:
        answer.message(outcome.reply)
    return str(answer), 200, {"Content-Type": "text/xml; charset=utf-8"}


def _require_twilio_signature() -> None:
    """Twilio signs the address it called (the portal's public address, with any query) and
    the posted fields."""
    url = sms.public_url(current_app.config, request.path)
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    if not sms.signed_by_twilio(current_app.config, url, request.form,
                                request.headers.get("X-Twilio-Signature")):
        abort(403)
