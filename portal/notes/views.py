"""Encounter notes: the session's queue, one patient's note, signing, "My unsigned notes"."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user

from portal.access_control import allow
from portal.clock import local_today
from portal.notes import bp
from portal.program import current_program
from portal.rules import notes as rules
from portal.services import notes as svc
from portal.services.errors import ServiceError

WRITERS = ("facilitator", "clinician", "admin")


def _fail(exc: ServiceError):
    abort(exc.status, description=exc.message)


def _queue_or_abort(session_id: int):
    try:
        session, gnote, rows = svc.notes_queue(session_id)
    except ServiceError as exc:
        _fail(exc)
    if current_user.role == "facilitator" and session.facilitator_id != current_user.id:
        abort(403, description="This group is assigned to another facilitator.")
    return session, gnote, rows


@bp.route("/notes/sessions/<int:session_id>")
@allow(*WRITERS)
def queue(session_id: int):
    session, gnote, rows = _queue_or_abort(session_id)
    return render_template("notes/queue.html", session=session, gnote=gnote, rows=rows,
                           tz=session.cohort.program.tz, modalities=rules.MODALITY_GROUP,
                           today=local_today(session.cohort.program.tz))


@bp.route("/notes/sessions/<int:session_id>/group", methods=["POST"])
@allow(*WRITERS)
def save_group(session_id: int):
    _queue_or_abort(session_id)
    try:
        svc.save_group_note(session_id, author=current_user._get_current_object(),
                            topic=request.form.get("topic"),
                            group_modality=request.form.get("group_modality"),
                            shared_text=request.form.get("shared_text"))
    except ServiceError as exc:
        if exc.status != 422:
            _fail(exc)
        session, gnote, rows = _queue_or_abort(session_id)
        return render_template("notes/queue.html", session=session, gnote=gnote, rows=rows,
                               tz=session.cohort.program.tz, modalities=rules.MODALITY_GROUP,
                               today=local_today(session.cohort.program.tz),
                               error=exc.message, form=request.form), 422
    flash("Group section saved.")
    return redirect(url_for(".queue", session_id=session_id))


def _note_page(session_id: int, patient_id: int, *, status: int = 200, **extra):
    session, gnote, rows = _queue_or_abort(session_id)
    row = next((r for r in rows if r.entry.patient_id == patient_id), None)
    if row is None:
        abort(404, description="This patient did not attend this group, so there is no note "
                               "to write for them.")
    g.patient_id = patient_id
    plan = svc.plan_for_dos(patient_id, session.dos)
    return render_template("notes/note.html", session=session, gnote=gnote, row=row, plan=plan,
                           tz=session.cohort.program.tz, rules=rules,
                           note=row.note, **extra), status


@bp.route("/notes/sessions/<int:session_id>/patients/<int:patient_id>", methods=["GET", "POST"])
@allow(*WRITERS)
def note(session_id: int, patient_id: int):
    if request.method == "GET":
        return _note_page(session_id, patient_id)
    _queue_or_abort(session_id)
    g.patient_id = patient_id
    try:
        saved = svc.save_note(session_id, patient_id, author=current_user._get_current_object(),
                              form=request.form)
    except ServiceError as exc:
        if exc.status != 422:
            _fail(exc)
        return _note_page(session_id, patient_id, status=422, error=exc.message,
                          form=request.form)
    if request.form.get("then") == "sign":
        return redirect(url_for(".note", session_id=session_id, patient_id=patient_id,
                                _anchor="sign"))
    flash("Draft saved.")
    return redirect(url_for(".note", session_id=session_id, patient_id=saved.patient_id))


@bp.route("/notes/<int:note_id>/sign", methods=["POST"])
@allow(*WRITERS)
def sign(note_id: int):
    try:
        note = svc.get_note(note_id)
    except ServiceError as exc:
        _fail(exc)
    session_id, patient_id = note.session_id, note.patient_id
    _queue_or_abort(session_id)
    g.patient_id = patient_id
    try:
        svc.sign_note(note_id, signer=current_user._get_current_object(),
                      attested=request.form.get("attest") == "yes",
                      clone_decision=request.form.get("clone_decision") or None,
                      clone_review=request.form.get("clone_review"),
                      author_reason=request.form.get("author_reason"))
    except svc.CloneSuspected as exc:
        # Side by side, for the author only: the other patient is shown by roster name.
        return _note_page(session_id, patient_id, status=409, clone_pairs=exc.pairs,
                          error=exc.message)
    except ServiceError as exc:
        if exc.status not in (409, 422):
            _fail(exc)
        return _note_page(session_id, patient_id, status=exc.status, error=exc.message)
    flash("Note signed and archived.")
    return redirect(url_for(".queue", session_id=session_id))


@bp.route("/notes/mine")
@allow(*WRITERS)
def mine():
    program = current_program()
    today = local_today(program.tz)
    due = svc.unsigned_notes_for(current_user._get_current_object(), program, today=today)
    return render_template("notes/mine.html", due=due, today=today, tz=program.tz)
