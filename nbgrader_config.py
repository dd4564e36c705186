"""nbgrader configuration of the rnn-course course directory (the repository root).

Every `nbgrader ...` and `python -m autograder ...` command run from here reads
this file.  Environment variables let a grading service move the gradebook and
the exchange without editing it (see docs/jupyterhub.md, "Configuration").
"""
import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

_here = os.path.dirname(os.path.abspath(__file__))

# --- course -----------------------------------------------------------------
c.CourseDirectory.course_id = os.environ.get("RNN_COURSE_ID", "rnn-course")
c.CourseDirectory.root = os.environ.get("RNN_COURSE_ROOT", _here)
# The five assignments, in course order (read by `python -m autograder`).
c.RnnCourse.assignments = ["rnn_cell", "bptt", "clipping", "lstm", "gru"]
# When each is handed out (`make hub` and `python -m autograder serve --release-on-open`
# release it to the exchange) and due, UTC.  Each opens once the previous one is past
# due: a later notebook ships working versions of earlier graded functions (bptt's
# provided rnn_forward, ...), checked when this file is read (autograder.course).
c.RnnCourse.schedule = {
    "rnn_cell": {"opens": "2026-11-30 09:00", "due": "2026-12-13 23:59"},
    "bptt": {"opens": "2026-12-14 00:00", "due": "2026-12-20 23:59"},
    "clipping": {"opens": "2026-12-21 00:00", "due": "2027-01-10 23:59"},
    "lstm": {"opens": "2027-01-11 00:00", "due": "2027-01-24 23:59"},
    "gru": {"opens": "2027-01-25 00:00", "due": "2027-02-07 23:59"},
}

# Gradebook: SQLite next to the course by default; a shared service sets
# RNN_COURSE_DB_URL=postgresql://... (any SQLAlchemy URL nbgrader supports).
c.CourseDirectory.db_url = os.environ.get(
    "RNN_COURSE_DB_URL", "sqlite:///" + os.path.join(_here, "gradebook.db")
)

# --- execution --------------------------------------------------------------
# Seconds a single cell may run before it is interrupted (instructor notebooks
# run in well under 30 s in total).
c.ExecutePreprocessor.timeout = 60
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# --- the grading service (`python -m autograder serve`, docs/jupyterhub.md) ---
# When it hands feedback back to students: "on_grade" (as soon as a submission is
# graded) or "after_due" (once the assignment's due date in the gradebook, plus the
# student's extension, has passed); one value, or a dict by assignment with "default".
c.RnnCourse.feedback_release = {"default": "on_grade"}

# --- grades out ---------------------------------------------------------------
# grades.csv (nbgrader's columns + flags) and grades-canvas.csv (Canvas's gradebook
# import) are written after each grading.  The Canvas assignment each assignment's
# column goes to, e.g. {"rnn_cell": 12345}; an assignment not named gets a new column.
c.CanvasCsvExportPlugin.canvas_assignment_ids = {}

# --- exchange (JupyterHub) ----------------------------------------------------
# The folder shared by instructors and students for release/fetch/submit/collect.
c.Exchange.root = os.environ.get("RNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
# Or (RNN_COURSE_EXCHANGE_MODE=http) the grading service serves the exchange over
# HTTP (docs/exchange.md): the folder above is then private to the grader account
# (0700), every entry in it the service's own, and students' servers use the
# rnn_exchange plugin instead of a shared folder.
c.HttpExchangeService.enabled = os.environ.get("RNN_COURSE_EXCHANGE_MODE", "folder") == "http"
if c.HttpExchangeService.enabled:
    c.ExchangeCollect.check_owner = False
    # nbgrader's own release would make the folder world-writable (0777)
    c.ExchangeFactory.release_assignment = "autograder.service.exchange.PrivateReleaseAssignment"
# `nbgrader collect` that keeps symbolic links as links (the precheck flags them)
# and skips a submission owned by someone other than the student it names.
c.ExchangeFactory.collect = "autograder.service.exchange.SafeExchangeCollect"

# Even nbgrader's own `generate_feedback` (say, from the formgrader after manual
# grading) keeps hidden tests' code and inputs out of what students get back.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "autograder.pipeline.worker.preprocessors.FeedbackHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
