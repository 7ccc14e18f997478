from flask import abort, current_app, request

from portal.extensions import csrf
from portal.notifications import outbox, sms
from portal.sms import bp


@bp.route("/sms/status", methods=["POST"])
@csrf.exempt
def status():
    """Twilio's status callback for a text the portal sent ("delivered", "undelivered", …).

    No login and no CSRF token: Twilio signs the request with the account's auth token
    (X-Twilio-Signature), and anything unsigned or signed otherwise is refused.
    """
    config = current_app.config
    signed = sms.twilio_signature_valid(
        config.get("TWILIO_AUTH_TOKEN"), sms.status_callback_url(config),
        request.form.items(multi=True), request.headers.get("X-Twilio-Signature", ""),
    )
    if not signed:
        abort(403)
    message_sid, reported = request.form.get("MessageSid"), request.form.get("MessageStatus")
    if message_sid and reported:
        outbox.record_provider_status(message_sid, reported, request.form.get("ErrorCode"))
    return "", 204
