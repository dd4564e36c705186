"""Names fixed by the LTI 1.3 and LTI Advantage specifications (1EdTech), written once.

The tool's client (:mod:`autograder.lti.client`), the hub's launch and the
project's test LMS (``tools/lms/testlms.py``) read them from here.
"""

from __future__ import annotations

VERSION = "1.3.0"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"

# id_token claims of a launch (LTI 1.3 core, NRPS 2.0, AGS 2.0)
_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CLAIM_MESSAGE_TYPE = _CLAIM + "message_type"
CLAIM_VERSION = _CLAIM + "version"
CLAIM_DEPLOYMENT_ID = _CLAIM + "deployment_id"
CLAIM_TARGET_LINK_URI = _CLAIM + "target_link_uri"
CLAIM_RESOURCE_LINK = _CLAIM + "resource_link"
CLAIM_ROLES = _CLAIM + "roles"
CLAIM_CONTEXT = _CLAIM + "context"
CLAIM_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
CLAIM_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CONTEXT_COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"

# OAuth2 scopes of the services
SCOPE_MEMBERSHIPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
_AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_LINEITEM = _AGS_SCOPE + "lineitem"
SCOPE_LINEITEM_READONLY = _AGS_SCOPE + "lineitem.readonly"
SCOPE_RESULT_READONLY = _AGS_SCOPE + "result.readonly"
SCOPE_SCORE = _AGS_SCOPE + "score"
AGS_SCOPES = (SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE)
TOOL_SCOPES = (SCOPE_MEMBERSHIPS, *AGS_SCOPES)
"""Every scope the tool asks for (what an LMS administrator grants it)."""

# media types
MEDIA_MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
MEDIA_LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
MEDIA_LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEDIA_SCORE = "application/vnd.ims.lis.v1.score+json"
MEDIA_RESULTS = "application/vnd.ims.lis.v2.resultcontainer+json"

# the client-credentials grant with a signed JWT (RFC 7523, as LTI Advantage's security framework)
GRANT_CLIENT_CREDENTIALS = "client_credentials"
ASSERTION_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALG = "RS256"

# AGS: a line item's services are its URL's path with these appended
SCORES_SUFFIX = "/scores"
RESULTS_SUFFIX = "/results"

# a score's fields (AGS 2.0, "Score publish service")
SCORE_SUBMISSION = "submission"  # {"submittedAt": ISO 8601}: when the student submitted
CANVAS_SUBMISSION = "https://canvas.instructure.com/lti/submission"  # Canvas's: {"submitted_at"}
ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
MEMBER_STATUS = ("Active", "Inactive", "Deleted")
