"""A visit as its staff member works it: Start visit, the report (the checklist, a note,
photos), End visit; and the admin team's change to a report's note. Every answer is a whole
page (or a redirect to one): the report form is a plain multipart form that works without
JavaScript, and portal.js only adds the upload's progress and keeps what was typed when
sending fails."""

from datetime import timedelta

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import policy, throttle
from portal.clock import zone
from portal.extensions import db
from portal.forms import ReportNoteForm, VisitReportForm
from portal.loaders import client_of_business, service_of_business
from portal.models import Feed, VisitReport
from portal.report_cards import ReportCard
from portal.services import composers, messages, send_later, visit_reports
from portal.services.uploads import UploadError
from portal.visits import bp, history

END = "end"  # the report form's "End visit and send report"


def _visit(service_id: int):
    """The visit and its client, when the person may work it (else 404)."""
    service = service_of_business(current_user, service_id)
    client = client_of_business(current_user, service.client_id)
    policy.require(policy.can_work_visit(current_user, client, service))
    return service, client


def visit_url(service_id: int) -> str:
    return url_for("visits.show", service_id=service_id)


@bp.route("/visits/<int:service_id>")
@login_required
def show(service_id: int):
    service, client = _visit(service_id)
    return _page(service, client, VisitReportForm(formdata=None))


def _page(service, client, form, status: int = 200):
    report = visit_reports.report_of(service)
    answers = dict(report.checklist) if report else {}
    if not form.send_key.data:
        form.send_key.data = composers.new_token()
    if report and not form.note.data and report.message and not report.message.is_deleted:
        form.note.data = report.message.text
    return render_template(
        "visits/show.html", service=service, client=client, form=form, report=report,
        checklist=visit_reports.checklist_of(current_user.business),
        answers=request.form if request.method == "POST" else answers,
        choices=visit_reports.ANSWERS,
    ), status


@bp.route("/visits/<int:service_id>/start", methods=["POST"])
@login_required
def start(service_id: int):
    service, _ = _visit(service_id)
    try:
        visit_reports.start(current_user, service, _coordinate("latitude"),
                            _coordinate("longitude"))
    except visit_reports.VisitRefused as refusal:
        flash(str(refusal), "error")
    return redirect(visit_url(service.id))


def _coordinate(name: str) -> float | None:
    try:
        return float(request.form.get(name, ""))
    except ValueError:
        return None


@bp.route("/visits/<int:service_id>/end", methods=["POST"])
@login_required
def end(service_id: int):
    service, _ = _visit(service_id)
    try:
        visit_reports.end(current_user, service)
    except visit_reports.VisitRefused as refusal:
        flash(str(refusal), "error")
    else:
        flash("Visit ended.", "success")
    return redirect(visit_url(service.id))


@bp.route("/visits/<int:service_id>/report", methods=["POST"])
@login_required
def report(service_id: int):
    """Files the report (or changes the one filed), with End visit first when asked."""
    service, client = _visit(service_id)
    form = VisitReportForm()
    if not form.validate_on_submit():
        return _page(service, client, form, 422)
    send_key = form.send_key.data if composers.is_token(form.send_key.data) else None
    if (earlier := messages.sent_with(current_user, send_key)) is not None:
        return _sent(client.id, earlier.id)  # sent before: a retry, or a second tap
    if send_later.scheduled_with(current_user, send_key) is not None:
        return _sent(client.id, None)  # sent for approval before
    if refusal := throttle.message_refusal(current_user, len(form.uploads())):
        form.note.errors = [refusal.message]
        return _page(service, client, form, 429)
    checklist = visit_reports.checklist_of(current_user.business)
    answers = {item: request.form.get(f"item-{index}", "na")
               for index, item in enumerate(checklist)}
    if any(answer not in visit_reports.ANSWERS for answer in answers.values()):
        form.note.errors = ["Answer each item with Yes, No or n/a."]
        return _page(service, client, form, 422)
    try:
        files = messages.prepare_uploads(
            form.uploads(), messages.UploadLimits.from_config(current_app.config))
        if request.form.get("action") == END and service.started_at is not None:
            visit_reports.end(current_user, service, commit=False)  # with the report
        filed = visit_reports.file(current_user, service, answers, form.note.data, files,
                                   send_key=send_key)
    except UploadError as error:
        form.files.errors = [str(error)]
        return _page(service, client, form, 422)
    except visit_reports.VisitRefused as refusal:
        form.note.errors = [str(refusal)]
        return _page(service, client, form, 422)
    except messages.AlreadySent as repeat:
        return _sent(client.id, repeat.message.id)
    if filed.message_id is None:
        flash(f"Report sent for approval: {client.name} will see it once it is approved.",
              "success")
        return _sent(client.id, None)
    flash(f"Report sent to {client.name}.", "success")
    return _sent(client.id, filed.message_id)


def _sent(client_id: int, message_id: int | None):
    """To the feed, at the report. portal.js sends the form itself (so that a failed send
    keeps it): it is told where to go, since a redirect's #fragment never reaches it."""
    url = _feed_url(client_id, message_id)
    if request.headers.get("X-Report-Form"):
        return "", 204, {"Report-Location": url}
    return redirect(url)


def _feed_url(client_id: int, message_id: int | None) -> str:
    """The feed at the report, or (awaiting approval) at what waits under it."""
    url = url_for("feeds.show", client_id=client_id, feed_name=Feed.CONVERSATION.value)
    return f"{url}#message-{message_id}" if message_id else f"{url}#scheduled-conversation"


@bp.app_template_global()
def report_card_of(card_json: str) -> ReportCard:
    """A report's card in the viewer's zone (a report awaiting approval, under the feed)."""
    return ReportCard.of(card_json, zone(current_user.time_zone))


@bp.route("/clients/<int:client_id>/visits")
@login_required
def past(client_id: int):
    """The household's past visits with their reports, newest first (the client's Visits)."""
    client = client_of_business(current_user, client_id)
    policy.require(policy.can_view_past_visits(current_user, client))
    before = history.parse_before(request.args.get("before"))
    page = history.load(client, current_user, before)
    return render_template("visits/past.html", client=client, page=page,
                           paged=before is not None)


@bp.route("/reports/<int:message_id>")
@login_required
def thread(message_id: int):
    """A visit report and the answers to it: where notifications of answers lead, and the one
    place the report's writer reads them once the client's feed no longer opens to them."""
    report = db.first_or_404(select(VisitReport).where(
        VisitReport.message_id == message_id,
        VisitReport.business_id == current_user.business_id))
    client = client_of_business(current_user, report.client_id)
    policy.require(report.message is not None and not report.message.is_deleted
                   and policy.can_view_report_thread(current_user, client, report.author_id,
                                                     report.service))
    return render_template(
        "visits/thread.html", report=report, client=client,
        card=ReportCard.of(report.card, zone(current_user.time_zone)),
        photos=history.report_photos(message_id), answers=history.answers(report),
        in_feed=policy.can_view_feed(current_user, client, Feed.CONVERSATION),
        open_until=report.service.ends_at + timedelta(
            days=current_user.business.staff_access_days),
    )


@bp.route("/messages/<int:message_id>/report-note", methods=["GET", "POST"])
@login_required
def edit_note(message_id: int):
    """The admin team changes a report's note (audited); the rest of it is the sitter's."""
    report = db.first_or_404(select(VisitReport).where(
        VisitReport.message_id == message_id,
        VisitReport.business_id == current_user.business_id))
    client = client_of_business(current_user, report.client_id)
    policy.require(policy.can_edit_report_note(current_user, client)
                   and report.message is not None and not report.message.is_deleted)
    form = ReportNoteForm(data={"note": report.message.text or ""})
    if form.validate_on_submit():
        visit_reports.edit_note(current_user, report, form.note.data)
        flash("The report's note was changed.", "success")
        return redirect(_feed_url(client.id, report.message_id))
    return render_template("visits/edit_note.html", form=form, report=report, client=client), \
        422 if form.errors else 200
