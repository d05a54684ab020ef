"""One patient-year audit file (issue 14) built by a real job worker: wall time, the worker's
peak RSS, its RSS after each of three consecutive exports, and pages per second next to a bare
WeasyPrint render of the same documents' HTML, measured in the same run.

Shape: one AM group of ``ROSTER`` patients (self-pay) meeting Monday, Wednesday and Friday until
``sessions`` rosters are closed (default 150, about a year), every roster signed by every
patient and closed through ``portal.services.roster``; for the patient the audit file is about,
a signed encounter note per session (``portal.services.notes``) and a treatment plan reviewed
every 28 days (``portal.services.plans``): all rendered, stamped and archived as the portal
does, into a temporary SQLite database and archive folder. The audit file covers the whole
range: a one-patient extract per roster, every note and plan whole.

The build runs as the job ``audit_file`` in a separate ``flask --app portal jobs worker``
process (one thread, the SQLite queue), three times back to back. The worker's own process
and its render process (a forkserver child that does the layout, given back after each job)
are read from /proc: ``VmHWM`` (peak RSS) of each (the render process's every 50 ms while it
lives), and the worker's processes' ``VmRSS`` after each export (idle worker).

- peak RSS: the worker's peak plus the render process's peak (an upper bound of the two
  processes' peak together); target < 600 MB.
- growth: RSS after the third export minus RSS after the first (the first export warms fonts
  and caches); target < 10% and < 30 MB.
- pages/s: binder pages / job wall time (median of the three), against a bare
  ``html_to_pdf`` in this process of the HTML of every document in the binder (each extract
  as the service builds it, each note and plan as it was archived). Target: >= 0.5x the bare
  render's pages per second (the job also stamps, attaches lines, binds and writes proofs).

The default year takes about 20 minutes on a busy 2-core machine (setup 1.5 min, three
exports of about 4 min each, the bare render about 4 min); 20 sessions take about 3.

Run: .venv/bin/python bench/audit_file.py [sessions]   (e.g. 20 for a quick run)
"""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date, datetime, time as clock, timedelta
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from portal import create_app  # noqa: E402
from portal.clock import local_to_utc, local_today  # noqa: E402
from portal.demo.signature_art import squiggle_png  # noqa: E402
from portal.documents import render  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import BackgroundJob, Cohort, Enrollment, Patient, Payer, Program, User  # noqa: E402

ROSTER = 8
EXPORTS = 3
PEAK_TARGET_MB = 600
GROWTH_TARGET = 0.10
GROWTH_TARGET_MB = 30
RATIO_TARGET = 0.5
PNG_MAX = 512 * 1024
PROBLEMS = [{"dimension": "5", "text": "Returns to use when stressed after work",
             "goal": "Sustained abstinence from alcohol",
             "objective": "Name three triggers and one coping skill for each"},
            {"dimension": "3", "text": "Anxiety drives evening cravings",
             "goal": "Manage anxiety without substances",
             "objective": "Practice a grounding skill daily and log it for two weeks"}]
INTERVENTIONS = [{"modality": "IOP group (relapse prevention, CBT skills)",
                  "frequency": "3 days/week, 3 h", "staff": "Group facilitator"}]


def config(tmp: Path) -> dict[str, str]:
    """The PORTAL_* environment of the bench's program; the worker process gets the same."""
    return {"PORTAL_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "PORTAL_ARCHIVE_DIR": f"{tmp}/archive", "PORTAL_SIGNING_KEY": f"{tmp}/key",
            "PORTAL_CHECKPOINT_DIR": f"{tmp}/checkpoints", "PORTAL_SECRET_KEY": "bench",
            "PORTAL_INSTANCE_DIR": f"{tmp}/instance", "PORTAL_QUEUE_URL": "",
            "PORTAL_QUEUE_FILE": f"{tmp}/queue.sqlite3", "PORTAL_JOB_DIR": f"{tmp}/results",
            "PORTAL_BASE_URL": "http://bench.invalid", "PORTAL_WITNESSES": ""}


def _plan(plan_svc, patient_id: int, clinician: User, at: datetime, seed: int) -> None:
    rows = [dict(p, target_date=(at.date() + timedelta(days=90)).isoformat()) for p in PROBLEMS]
    plan = plan_svc.create_plan(patient_id, author=clinician, rows=rows,
                                interventions=INTERVENTIONS, asam_edition="3", now=at)
    plan_svc.sign_plan_patient(plan.id, png=squiggle_png(seed=seed), max_png_bytes=PNG_MAX, now=at)
    plan_svc.sign_plan_staff(plan.id, user=clinician, attested=True, now=at + timedelta(minutes=3))


def setup(n_sessions: int) -> tuple[int, int, date, date, list[str]]:
    """The program's year through the real services. Returns (patient id, requester id, first
    DOS, last DOS, the HTML of every note and plan archived for the patient)."""
    from portal.services import notes as note_svc
    from portal.services import plans as plan_svc
    from portal.services import roster as svc
    from portal.services.schedule import ensure_sessions

    program = Program(name="Bench IOP", time_zone="America/Chicago", billing_npi="1234567893")
    payer = Payer(rule_key="self_pay", name="Self-pay", kind="self_pay")
    fac = User(name="Dana Whitfield", email="d@bench.example", role="facilitator", credential="LCSW",
               npi="1487654323", password_hash="x")
    clinician = User(name="Priya Raman", email="p@bench.example", role="clinician",
                     credential="LCADC", npi="1679876544", password_hash="x")
    billing = User(name="Jo Billing", email="j@bench.example", role="billing", password_hash="x")
    cohort = Cohort(program=program, name="AM IOP", weekdays="1,2,3,4,5,6,7",
                    start_local=clock(9, 0), duration_minutes=180, facilitator=fac, capacity=12)
    db.session.add_all([program, payer, fac, clinician, billing, cohort])
    tz = program.tz
    # Mon/Wed/Fri back from last week, so the year ends before today.
    days, day = [], local_today(tz) - timedelta(days=7)
    while len(days) < n_sessions:
        if day.weekday() in (0, 2, 4):
            days.append(day)
        day -= timedelta(days=1)
    days.reverse()
    first_day = days[0] - timedelta(days=3)
    patients = []
    for i in range(ROSTER):
        p = Patient(mrn=f"9{i:05d}", legal_first=f"Pat{i}", legal_last=f"Bench{i}",
                    dob=date(1990, 1, 1), payer=payer, admit_date=first_day, level_of_care="2.1")
        patients.append(p)
        db.session.add_all([p, Enrollment(patient=p, cohort=cohort, start_date=first_day)])
    db.session.commit()
    target_id, fac_id, clin_id, billing_id = patients[0].id, fac.id, clinician.id, billing.id

    html: list[str] = []
    real_render_html = render.render_html

    def keeping(template: str, context: dict) -> str:  # the archived note and plan HTML
        out = real_render_html(template, context)
        if template in ("documents/encounter_note.html", "documents/treatment_plan.html"):
            html.append(out)
        return out

    render.render_html = keeping
    try:
        next_plan = first_day
        for n, dos in enumerate(days):
            clinician = db.session.get(User, clin_id)
            if dos >= next_plan:
                _plan(plan_svc, target_id, clinician, local_to_utc(next_plan, clock(8, 0), tz), n)
                next_plan += timedelta(days=28)
            (session,) = ensure_sessions(db.session.get(Program, program.id), dos)
            signed = local_to_utc(dos, clock(9, 5), tz)
            for k, entry in enumerate(session.entries):
                svc.sign_attendance(session.id, entry.id, png=squiggle_png(seed=k), strokes=None,
                                    user_agent="bench", max_png_bytes=PNG_MAX, now=signed)
            svc.set_session_times(session.id, start="09:00", end="12:00")
            fac = db.session.get(User, fac_id)
            svc.close_roster(session.id, facilitator=fac, typed_name=fac.name, attested=True,
                             signature_png=squiggle_png(seed=999), max_png_bytes=PNG_MAX,
                             now=local_to_utc(dos, clock(12, 10), tz))
            sid = session.id
            note_svc.save_group_note(sid, author=fac, topic="Coping with cravings",
                                     group_modality="relapse_prevention",
                                     shared_text="The group reviewed the week's goals and worked "
                                                 "through a skills exercise in pairs.")
            plan = note_svc.plan_for_dos(target_id, dos)
            form = {"objective_key": plan.objectives[n % len(plan.objectives)]["key"],
                    "participation": "active", "affect": "appropriate",
                    "mental_status": "alert_oriented", "risk": "none", "progress": "progressing",
                    "individual_text": f"Session {n + 1}: named {2 + n % 7} triggers on the "
                                       f"worksheet and chose urge surfing for the strongest; "
                                       f"plans to practice it {1 + n % 3} times before next group."}
            end = local_to_utc(dos, clock(12, 0), tz)
            note = note_svc.save_note(sid, target_id, author=fac, form=form,
                                      now=end + timedelta(minutes=20))
            try:
                note_svc.sign_note(note.id, signer=fac, attested=True, now=end + timedelta(minutes=40))
            except note_svc.CloneSuspected:
                note_svc.sign_note(note.id, signer=fac, attested=True, now=end + timedelta(minutes=40),
                                   clone_decision="individualized",
                                   clone_review="Reviewed: this reflects the patient's own report.")
    finally:
        render.render_html = real_render_html
    return target_id, billing_id, days[0], days[-1], html


def extract_html(patient_id: int, first: date, last: date) -> list[str]:
    """The HTML of every one-patient extract, as the audit-file service builds it."""
    from portal.audit_files import service as af
    from portal.program import current_program
    from portal.services.exports import _chosen_from_chain

    patient = db.session.get(Patient, patient_id)
    seqs, whole, chosen = _chosen_from_chain(patient, patient.mrn, first, last)
    entries = af._entries(seqs)
    out = []
    for seq in seqs:
        if seq in whole:
            continue
        raw, entry = entries[seq]
        for k, (line, salt) in enumerate(chosen[seq]):
            ctx, _canonical, _name = af._extract_context(seq=seq, raw=raw, entry=entry, line=line,
                                                         salt=salt, patient=patient,
                                                         program=current_program(), k=k)
            ctx["original_pages"] = 1
            out.append(render.render_html("documents/audit_extract.html", ctx))
    db.session.rollback()
    return out


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith(("VmRSS:", "VmHWM:")):
                out[ln.split(":")[0]] = int(ln.split()[1]) * 1024
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                found += kids
                todo += kids
        except FileNotFoundError:
            continue
    return found


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return ""


def _children(pid: int) -> list[int]:
    kids = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            kids += [int(x) for x in f.read().split()]
    return kids


def _render_pid(worker: int) -> int | None:
    """The render process: a child of the worker's forkserver (``portal.documents.render``)."""
    for kid in _children(worker):
        if "multiprocessing.forkserver" in _name(kid):
            grandkids = _children(kid)
            return grandkids[-1] if grandkids else None
    return None


def _tree_rss(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            total += _status(p)["VmRSS"]
        except (FileNotFoundError, KeyError):
            pass
    return total


def run_job(app, patient_id: int, user_id: int, first: date, last: date,
            worker: int) -> tuple[float, int, int, int]:
    """Start one audit-file job, wait for the worker to finish it. Returns (wall seconds, binder
    pages, sampled peak RSS of the worker and its descendants together, the render process's
    peak RSS read every 50 ms while it lived)."""
    from portal.audit_files.jobs import KIND
    from portal.jobs import start

    params = {"patient_id": patient_id, "from": first.isoformat(), "to": last.isoformat(),
              "recipient": "Bench Payer", "purpose": "Payer audit", "legal_basis": "audit_2_53",
              "consent_scope": ""}
    t0 = time.perf_counter()
    job = start(KIND, user_id=user_id, params=params)
    job_id, sampled, render_peak = job.id, 0, 0
    while True:
        sampled = max(sampled, _tree_rss([worker] + _descendants(worker)))
        # The render process is given back when the job ends: read its peak while it lives.
        rp = _render_pid(worker)
        try:
            render_peak = max(render_peak, _status(rp)["VmHWM"]) if rp else render_peak
        except (FileNotFoundError, KeyError):
            pass
        db.session.rollback()
        job = db.session.get(BackgroundJob, job_id)
        state = job.state
        # The portal's SQLite transactions begin IMMEDIATE: never sleep inside one, or the
        # worker cannot write.
        db.session.rollback()
        if state not in ("queued", "running"):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    job = db.session.get(BackgroundJob, job_id)
    result_path, error = job.result_path, job.error
    db.session.rollback()
    if state != "done":
        log = Path(os.environ["PORTAL_JOB_DIR"]).parent / "worker.log"
        sys.exit(f"the audit-file job ended {state}: {error}\n{log.read_text()[-3000:]}")
    with zipfile.ZipFile(result_path) as z:
        pages = len(PdfReader(BytesIO(z.read("audit-file.pdf"))).pages)
    return wall, pages, sampled, render_peak


def _terminated(_sig, _frame):
    raise SystemExit("terminated")  # so the worker is stopped and the temporary folder removed


def main(n_sessions: int = 150) -> None:
    mb = 1024 * 1024
    signal.signal(signal.SIGTERM, _terminated)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = config(tmp)
        os.environ.update(env)
        app = create_app()
        with app.app_context():
            upgrade()
            t0 = time.perf_counter()
            patient_id, user_id, first, last, whole_html = setup(n_sessions)
            setup_s = time.perf_counter() - t0
            db.session.rollback()
            worker = subprocess.Popen(
                [str(Path(sys.executable).parent / "flask"), "--app", "portal", "jobs", "worker",
                 "--threads", "1", "--no-periodic"], cwd=ROOT, env={**os.environ, **env},
                stdout=subprocess.DEVNULL, stderr=open(tmp / "worker.log", "w"))
            try:
                walls, after, sampled, split, render_peaks = [], [], [], [], []
                for _ in range(EXPORTS):
                    wall, pages, peak, render_peak = run_job(app, patient_id, user_id, first, last,
                                                             worker.pid)
                    walls.append(wall)
                    sampled.append(peak)
                    render_peaks.append(render_peak)
                    time.sleep(0.5)
                    after.append(_tree_rss([worker.pid] + _descendants(worker.pid)))
                    rp = _render_pid(worker.pid)
                    split.append((_status(worker.pid)["VmRSS"], _status(rp)["VmRSS"] if rp else 0))
                peak_worker = _status(worker.pid)["VmHWM"]
                peak_render = max(render_peaks)
            finally:
                worker.send_signal(signal.SIGINT)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()

            # Bare WeasyPrint, in this process, of every document's HTML in the binder.
            docs = extract_html(patient_id, first, last) + whole_html
            render.html_to_pdf(docs[0])  # warm-up: fonts load on the first layout
            bare_pages, t0 = 0, time.perf_counter()
            for html in docs:
                bare_pages += len(PdfReader(BytesIO(render.html_to_pdf(html))).pages)
            bare_s = time.perf_counter() - t0

        job_s = statistics.median(walls)
        job_pps, bare_pps = pages / job_s, bare_pages / bare_s
        peak = peak_worker + peak_render
        growth = after[-1] - after[0]
        growth_pct = growth / after[0]
        print(f"audit file, one patient-year: {n_sessions} rosters of {ROSTER} (one-patient "
              f"extracts), {n_sessions} notes, {len(whole_html) - n_sessions} plan versions; "
              f"{EXPORTS} exports in a `flask jobs worker` (setup {setup_s:.0f} s, SQLite)")
        print(f"  audit-file job wall time (median of {EXPORTS})  : {job_s:8.1f} s  "
              f"({', '.join(f'{w:.1f}' for w in walls)})")
        print(f"  binder pages                              : {pages:8d}")
        print(f"  peak RSS: worker {peak_worker / mb:.0f} MB + render process {peak_render / mb:.0f} MB"
              f" = {peak / mb:.0f} MB  (target < {PEAK_TARGET_MB} MB; sampled tree peak "
              f"{max(sampled) / mb:.0f} MB incl. forkserver)")
        print(f"  RSS after each export (worker tree)       : "
              f"{', '.join(f'{a / mb:.0f}' for a in after)} MB; growth 1st->last "
              f"{growth / mb:+.1f} MB ({growth_pct:+.1%}; target < {GROWTH_TARGET:.0%} "
              f"and < {GROWTH_TARGET_MB} MB)")
        print(f"    worker / render process after each      : "
              f"{', '.join(f'{w / mb:.0f}/{r / mb:.0f}' for w, r in split)} MB")
        print(f"  bare WeasyPrint of the same {len(docs)} documents' HTML: {bare_pages} pages in "
              f"{bare_s:.1f} s = {bare_pps:6.2f} pages/s")
        print(f"  audit file                                : {pages} pages in {job_s:.1f} s "
              f"= {job_pps:6.2f} pages/s")
        ratio = job_pps / bare_pps
        print(f"  ratio audit-file / bare pages per second  : {ratio:8.2f}x  (target >= {RATIO_TARGET}x)")
        ok = (peak < PEAK_TARGET_MB * mb and growth_pct < GROWTH_TARGET
              and growth < GROWTH_TARGET_MB * mb and ratio >= RATIO_TARGET)
        print(f"{'PASS' if ok else 'FAIL'}: peak {peak / mb:.0f} MB, growth {growth / mb:+.1f} MB "
              f"({growth_pct:+.1%}), {ratio:.2f}x bare pages/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150)
