"""Clients > Import: CSV files of clients, pets and services, previewed before anything is
written (portal/services/imports.py does the reading, matching and writing)."""

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy.exc import IntegrityError
from wtforms import RadioField, SelectChoice

from portal import policy
from portal.clients import bp
from portal.fragments import render
from portal.models import PendingImport
from portal.services import imports
from portal.urls import number_arg

ROWS_PER_PAGE = 100
SHOWN = ("all", "error", "new", "updated", "unchanged")


class ImportForm(FlaskForm):
    kind = RadioField("What does the file hold?", default="clients", choices=[
        SelectChoice("clients", "Clients"), SelectChoice("pets", "Pets"),
        SelectChoice("services", "Services"),
    ])
    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file.")],
                     description="A .csv file of up to 5 MB and 20,000 rows, UTF-8 "
                                 "(\u201cCSV UTF-8\u201d in Excel).",
                     render_kw={"accept": ".csv,text/csv"})


def _pending(token: str) -> PendingImport:
    policy.require(policy.can_import_records(current_user))
    pending = imports.find_pending(current_user, token[:64])
    policy.require(pending is not None)
    return pending


@bp.route("/clients/import", methods=["GET", "POST"])
@login_required
def import_records():
    policy.require(policy.can_import_records(current_user))
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            data = upload.stream.read(imports.MAX_BYTES + 1)  # a byte over says it is too big
        finally:
            upload.close()
        try:
            text = imports.parse_upload(form.kind.data, data, upload.filename or "")
        except imports.FileProblem as problem:
            form.file.errors.append(str(problem))
        else:
            pending = imports.keep(current_user.business, current_user, form.kind.data,
                                   upload.filename or "upload.csv", text)
            return redirect(url_for("clients.import_preview", token=pending.token))
    return render_template(
        "clients/import.html", form=form, kinds=imports.KINDS, columns=imports.COLUMNS,
    ), 422 if form.errors else 200


@bp.route("/clients/import/templates/<kind>.csv")
@login_required
def import_template(kind: str):
    policy.require(policy.can_import_records(current_user) and kind in imports.KINDS)
    return Response(
        imports.template_csv(kind).encode("utf-8"), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{kind}-template.csv"',
                 "Cache-Control": "no-store"},
    )


def _preview(pending: PendingImport, plan: imports.Plan, status: int = 200, refused=False):
    counts = plan.counts
    shown = request.args.get("show", "error" if counts["error"] else "all")
    shown = shown if shown in SHOWN else "all"
    rows = [row for row in plan.rows if shown == "all" or row.status == shown]
    pages = max(1, -(-len(rows) // ROWS_PER_PAGE))
    page = min(max(number_arg("page") or 1, 1), pages)
    context = dict(
        pending=pending, plan=plan, counts=counts, shown=shown, page_number=page, pages=pages,
        rows=rows[(page - 1) * ROWS_PER_PAGE:page * ROWS_PER_PAGE], matching=len(rows),
        noun=imports.NOUNS[plan.kind], refused=refused,
    )
    return render("clients/import_preview.html", "clients/_import_rows.html", **context), status


@bp.route("/clients/import/<token>")
@login_required
def import_preview(token: str):
    pending = _pending(token)
    if pending.imported_at is not None:
        flash(f"{pending.file_name} was imported.", "success")
        return redirect(url_for("clients.index"))
    plan = imports.plan(current_user.business, pending.kind, pending.content, pending.file_name)
    return _preview(pending, plan)


@bp.route("/clients/import/<token>/confirm", methods=["POST"])
@login_required
def import_confirm(token: str):
    pending = _pending(token)
    file_name = pending.file_name
    try:
        plan = imports.run(current_user, current_user.business, pending)
    except imports.AlreadyImported:
        flash(f"{file_name} was imported already.", "success")
        return redirect(url_for("clients.index"))
    except imports.ImportRefused as refused:
        return _preview(pending, refused.plan, 422, refused=True)
    except IntegrityError:
        flash("Nothing was imported: the records changed while the file was being imported "
              "(someone else may be importing too). Check the preview and try again.", "error")
        return redirect(url_for("clients.import_preview", token=token))
    flash(_summary(plan, file_name), "success")
    return redirect(url_for("clients.index"))


def _summary(plan: imports.Plan, file_name: str) -> str:
    counts = plan.counts
    if not plan.writes:
        return (f"Nothing to change: every row of {file_name} matches what the portal has "
                "already.")
    singular, plural = imports.NOUNS[plan.kind]
    return (f"Imported {file_name}: {counts['new']:,} new "
            f"{singular if counts['new'] == 1 else plural}, {counts['updated']:,} updated, "
            f"{counts['unchanged']:,} unchanged.")


@bp.route("/clients/import/<token>/discard", methods=["POST"])
@login_required
def import_discard(token: str):
    pending = _pending(token)
    imports.discard(pending)
    flash("The upload was discarded; nothing was imported.", "success")
    return redirect(url_for("clients.import_records"))
