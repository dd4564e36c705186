"""The tool's LTI client (autograder.lti.client) against the project's running test LMS.

No mock: every call crosses loopback HTTP to ``tools/lms/testlms.py``, which
checks the signed client assertion, the bearer token and its scopes, pages its
listings and keeps a gradebook that counts each accepted score post.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timedelta, timezone

import lmsfixture as F
import pytest
from jwcrypto import jwk

from autograder.course import Course
from autograder.errors import UsageError
from autograder.lti import spec
from autograder.lti.client import LtiClient, LtiError, reason_of, service_url


@pytest.fixture
def client(lms, lti_key):
    return LtiClient(F.platform_of(lms), lti_key, timeout=2.0)


def requests_to(lms, endpoint, method=None):
    return sum(1 for e, m in lms.requests if e == endpoint and method in (None, m))


def refused(call, *args, **kwargs) -> LtiError:
    with pytest.raises(LtiError) as caught:
        call(*args, **kwargs)
    assert "\n" not in str(caught.value)
    return caught.value


# --- the access token ----------------------------------------------------------------

def test_a_token_is_obtained_once_and_cached(lms, client):
    first = client.token()
    assert client.token() == first
    client.members(lms.memberships_url(F.CONTEXT))
    assert requests_to(lms, "token") == 1 and client.tokens_fetched == 1
    granted = lms.tokens[first][1]
    assert granted == set(spec.TOOL_SCOPES)


def test_an_expiring_token_is_renewed(lti_key):
    with F.start_lms(lti_key, token_lifetime=1) as lms:
        client = LtiClient(F.platform_of(lms), lti_key)
        first = client.token()
        time.sleep(1.0)
        second = client.token()
        assert second != first and client.tokens_fetched == 2
        client.members(lms.memberships_url(F.CONTEXT))  # the new one works


def test_a_token_the_lms_no_longer_knows_is_replaced_once(lms, client):
    client.members(lms.memberships_url(F.CONTEXT))
    lms.revoke_tokens()
    assert len(client.members(lms.memberships_url(F.CONTEXT))) == len(F.PEOPLE)
    assert client.tokens_fetched == 2


def test_a_wrong_key_is_refused_by_the_platform(lms):
    stranger = jwk.JWK.generate(kty="RSA", size=2048)
    error = refused(LtiClient(F.platform_of(lms), stranger).token)
    assert not error.retryable and error.status == 401
    assert "refused it, 401" in str(error) and "client assertion refused" in str(error)


def test_scopes_are_limited_to_the_registered_ones(lti_key):
    only_roster = F.registration(lti_key, scopes=(spec.SCOPE_MEMBERSHIPS,))
    with F.start_lms(lti_key, tool=only_roster) as lms:
        client = LtiClient(F.platform_of(lms), lti_key)
        assert lms.tokens[client.token()][1] == {spec.SCOPE_MEMBERSHIPS}
        error = refused(client.line_items, lms.lineitems_url(F.CONTEXT))
        assert error.status == 403 and "lineitem" in str(error) and not error.retryable


def test_a_course_gets_its_client_from_its_config_and_key(lms, lti_key, tmp_path):
    config = F.platform_of(lms)
    lines = ["c = get_config()", "c.RnnCourse.assignments = ['rnn_cell']"]
    lines += [f"c.LtiPlatform.{name} = {getattr(config, name)!r}"
              for name in ("issuer", "client_id", "deployment_id", "authorize_url", "token_url",
                           "jwks_url", "contexts", "services")]
    (tmp_path / "nbgrader_config.py").write_text("\n".join(lines) + "\n")
    course = Course(tmp_path)
    with pytest.raises(UsageError, match="no LTI tool key at"):
        LtiClient.for_course(course)
    path = config.key_path(tmp_path)
    path.parent.mkdir(mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, lti_key.export_to_pem(private_key=True, password=None))
    os.close(fd)
    client = LtiClient.for_course(course)
    urls = client.platform.services[F.CONTEXT]
    assert len(client.members(urls["context_memberships_url"])) == len(F.PEOPLE)
    (tmp_path / "nbgrader_config.py").write_text(lines[0] + "\n" + lines[1] + "\n")
    with pytest.raises(UsageError, match="c.LtiPlatform lacks issuer, client_id"):
        LtiClient.for_course(Course(tmp_path))


# --- NRPS ----------------------------------------------------------------------------

def test_every_page_of_the_roster_is_read(lti_key):
    with F.start_lms(lti_key, page_size=2) as lms:
        members = LtiClient(F.platform_of(lms), lti_key).members(lms.memberships_url(F.CONTEXT))
        assert [m["user_id"] for m in members] == [p[0] for p in F.PEOPLE]
        assert requests_to(lms, "memberships") == 3  # 2 + 2 + 1
        ada = members[2]
        assert (ada["name"], ada["email"], ada["roles"], ada["status"]) == (
            "Ada Lovelace", "s1@lms.example.org", [F.PEOPLE[2][2]], "Active")


def test_a_member_who_left_is_listed_inactive_or_gone(lms, client):
    lms.leave(F.CONTEXT, "s2")
    lms.leave(F.CONTEXT, "s3", status=None)
    status = {m["user_id"]: m["status"] for m in client.members(lms.memberships_url(F.CONTEXT))}
    assert status["s2"] == "Inactive" and "s3" not in status and status["s1"] == "Active"


# --- AGS -----------------------------------------------------------------------------

def test_a_line_item_is_created_once_then_found(lms, client):
    url = lms.lineitems_url(F.CONTEXT)
    created = client.line_item(url, "rnn_cell", "rnn_cell", 12.5, tag="rnn-course")
    assert created["scoreMaximum"] == 12.5 and created["resourceId"] == "rnn_cell"
    again = client.line_item(url, "rnn_cell", "rnn_cell", 12.5, tag="rnn-course")
    other = client.line_item(url, "bptt", "bptt", 10)
    assert again["id"] == created["id"] != other["id"]
    assert requests_to(lms, "lineitems", "POST") == 2
    assert [i["resourceId"] for i in lms.items(F.CONTEXT)] == ["rnn_cell", "bptt"]
    assert client.line_items(url, tag="rnn-course") == [created]


def test_a_line_item_is_updated_and_deleted(lms, client):
    item = client.line_item(lms.lineitems_url(F.CONTEXT), "gru", "gru", 10)
    item["scoreMaximum"] = 20
    assert client.update_line_item(item)["scoreMaximum"] == 20
    assert client.get_line_item(item["id"])["scoreMaximum"] == 20
    client.delete_line_item(item["id"])
    assert lms.items(F.CONTEXT) == []


def test_a_score_is_posted_counted_and_read_back(lms, client):
    item = client.line_item(lms.lineitems_url(F.CONTEXT), "rnn_cell", "rnn_cell", 10)
    when = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    client.post_score(item["id"], "s1", 7.5, 10, timestamp=when, comment="late: -10%")
    assert lms.posts(item["id"], "s1") == 1 and lms.posts(item["id"], "s2") == 0
    grade = lms.grade(item["id"], "s1")
    assert (grade["scoreGiven"], grade["scoreMaximum"], grade["gradingProgress"],
            grade["activityProgress"]) == (7.5, 10, "FullyGraded", "Completed")
    assert datetime.fromisoformat(grade["timestamp"]) == when
    (result,) = client.results(item["id"], user_id="s1")
    assert (result["userId"], result["resultScore"], result["resultMaximum"]) == ("s1", 7.5, 10)
    client.post_score(item["id"], "s1", 9, 10, timestamp=when + timedelta(hours=1))
    assert lms.posts(item["id"], "s1") == 2 and lms.grade(item["id"], "s1")["scoreGiven"] == 9


def test_an_older_score_than_the_lms_has_is_refused(lms, client):
    item = client.line_item(lms.lineitems_url(F.CONTEXT), "bptt", "bptt", 10)
    now = datetime.now(timezone.utc)
    client.post_score(item["id"], "s1", 5, 10, timestamp=now)
    error = refused(client.post_score, item["id"], "s1", 8, 10,
                    timestamp=now - timedelta(minutes=1))
    assert error.status == 409 and "older" in str(error) and not error.retryable
    assert lms.posts(item["id"], "s1") == 1 and lms.grade(item["id"], "s1")["scoreGiven"] == 5


# --- what goes wrong, classified ------------------------------------------------------

@pytest.fixture
def item(lms, client):
    return client.line_item(lms.lineitems_url(F.CONTEXT), "rnn_cell", "rnn_cell", 10)


def test_a_5xx_is_retryable_and_the_post_not_counted(lms, client, item):
    lms.fail("scores", status=503)
    error = refused(client.post_score, item["id"], "s1", 5, 10)
    assert error.retryable and error.status == 503
    assert "answered 503 (Service Unavailable)" in str(error)
    assert lms.posts(item["id"], "s1") == 0
    client.post_score(item["id"], "s1", 5, 10)  # the failure was for one request
    assert lms.posts(item["id"], "s1") == 1


def test_too_many_requests_is_retryable(lms, client, item):
    lms.fail("scores", status=429, reason="Rate limit exceeded")
    error = refused(client.post_score, item["id"], "s1", 5, 10)
    assert error.retryable and "answered 429 (Rate limit exceeded)" in str(error)


def test_a_hanging_lms_is_a_retryable_timeout(lms, lti_key, item):
    client = LtiClient(F.platform_of(lms), lti_key, timeout=0.3)
    lms.fail("scores", hang=True)
    started = time.monotonic()
    error = refused(client.post_score, item["id"], "s1", 5, 10)
    assert error.retryable and "no answer in 0.3 s (timeout)" in str(error)
    assert time.monotonic() - started < 2
    assert lms.posts(item["id"], "s1") == 0


@pytest.mark.parametrize("failure", [{"status": 502}, {"hang": True}])
def test_a_score_recorded_whose_answer_is_lost_is_retryable_and_visible(lms, lti_key, item,
                                                                       failure):
    """The LMS records the score, then its answer is lost: the tool sees a retryable
    error, and can read back that the LMS has the score before posting it again."""
    client = LtiClient(F.platform_of(lms), lti_key, timeout=0.3)
    lms.fail("scores", applied=True, **failure)
    when = datetime(2026, 12, 2, 8, 30, tzinfo=timezone.utc)
    error = refused(client.post_score, item["id"], "s1", 6.5, 10, timestamp=when)
    assert error.retryable
    assert lms.posts(item["id"], "s1") == 1
    (result,) = client.results(item["id"], user_id="s1")
    assert result["resultScore"] == 6.5 and datetime.fromisoformat(result["timestamp"]) == when


@pytest.mark.parametrize("endpoint", ["memberships", "lineitems", "results", "token"])
def test_garbage_json_is_retryable(lms, client, item, endpoint):
    client.forget_token()
    lms.fail(endpoint, garbage=True)
    calls = {"memberships": lambda: client.members(lms.memberships_url(F.CONTEXT)),
             "lineitems": lambda: client.line_items(lms.lineitems_url(F.CONTEXT)),
             "results": lambda: client.results(item["id"]),
             "token": client.token}
    error = refused(calls[endpoint])
    assert error.retryable and "garbage" in str(error)


def test_a_4xx_is_refused_with_the_lms_reason(lms, client, item):
    lms.fail("scores", status=422, reason="User s1 is not a student in this course")
    error = refused(client.post_score, item["id"], "s1", 5, 10)
    assert not error.retryable and error.status == 422
    assert "refused it, 422 (User s1 is not a student in this course)" in str(error)


def test_a_score_for_someone_not_in_the_course_is_refused(lms, client, item):
    error = refused(client.post_score, item["id"], "nobody", 5, 10)
    assert error.status == 422 and "'nobody' is not in the course" in str(error)


def test_a_deleted_line_item_is_refused_not_retried(lms, client, item):
    lms.delete_item(item["id"])
    error = refused(client.post_score, item["id"], "s1", 5, 10)
    assert not error.retryable and error.status == 404 and "was deleted" in str(error)
    again = client.line_item(lms.lineitems_url(F.CONTEXT), "rnn_cell", "rnn_cell", 10)
    assert again["id"] != item["id"]  # the tool can make a new one


def test_an_lms_that_is_down_is_retryable(lti_key):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lms = F.testlms.TestLMS(F.registration(lti_key))
    platform = F.platform_of(lms, token_url=f"http://127.0.0.1:{port}/token")
    error = refused(LtiClient(platform, lti_key).token)
    assert error.retryable and "connection refused" in str(error)


def test_the_reason_is_one_short_line():
    class Answer:
        reason = "Bad Request"

        def __init__(self, text):
            self.text = text

    assert reason_of(Answer('{"error": "invalid_scope", "error_description": "no"}')) == "no"
    assert reason_of(Answer("<html><h1>Forbidden</h1>\n<p>go away</p></html>")) == (
        "Forbidden go away")
    assert reason_of(Answer("")) == "Bad Request"
    assert len(reason_of(Answer("x" * 5000))) == 200


def test_service_urls_keep_the_query():
    moodle = "https://moodle/x/lineitems/5/lineitem?type_id=3"
    assert service_url(moodle, spec.SCORES_SUFFIX) == (
        "https://moodle/x/lineitems/5/lineitem/scores?type_id=3")
    canvas = "https://canvas/api/lti/courses/1/line_items/7"
    assert service_url(canvas, spec.RESULTS_SUFFIX) == canvas + "/results"


def test_a_launch_and_the_roster_name_each_person_alike(lms, client):
    platform = client.platform
    for field in ("user_id", "email"):
        platform.username_from = field
        from_roster = [platform.username(m)
                       for m in client.members(lms.memberships_url(F.CONTEXT))]
        from_launch = [platform.username(lms.id_token_claims(p[0], F.CONTEXT,
                                                             f"{F.CONTEXT}-link", "n"))
                       for p in F.PEOPLE]
        assert from_roster == from_launch and None not in from_roster
