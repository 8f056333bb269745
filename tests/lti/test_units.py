"""The LTI pieces that are pure functions: URL handling of the LMS's service endpoints, the launch allow-list,
role mapping, names."""

from __future__ import annotations

from reprolab_gateway.lti.config import LtiSettings
from reprolab_gateway.lti.flows import INSTRUCTOR, STUDENT, workspace_role
from reprolab_gateway.lti.launch import target_allowed
from reprolab_gateway.lti.services import next_link, with_path_suffix, with_query

M = "http://purl.imsglobal.org/vocab/lis/v2/"


def test_scores_go_on_the_path_and_the_query_string_stays() -> None:
    assert with_path_suffix("https://lms.example/api/lti/courses/1/line_items/7?type_id=3", "/scores") == \
        "https://lms.example/api/lti/courses/1/line_items/7/scores?type_id=3"
    assert with_path_suffix("https://lms.example/li/7/", "/scores") == "https://lms.example/li/7/scores"
    assert with_query("https://lms.example/li?type_id=3", resource_id="a b") == \
        "https://lms.example/li?type_id=3&resource_id=a+b"


def test_next_page_from_the_link_header() -> None:
    header = ('<https://lms.example/m?page=1>; rel="first", <https://lms.example/m?page=3>; rel="next", '
              '<https://lms.example/m?page=9>; rel="last"')
    assert next_link(header) == "https://lms.example/m?page=3"
    assert next_link('<https://lms.example/m?page=9>; rel="last"') is None
    assert next_link("") is None


def test_only_this_tool_is_a_launch_target() -> None:
    s = LtiSettings(allowed_targets=["https://courses.uni.example/reprolab/"])
    base = "https://reprolab.uni.example"
    assert target_allowed(s, base, "https://reprolab.uni.example/lti/launch")
    assert target_allowed(s, base, "https://courses.uni.example/reprolab/lti/launch")
    for bad in ("https://reprolab.uni.example.evil.example/lti/launch", "https://evil.example/lti/launch",
                "https://user@reprolab.uni.example/lti/launch", "http://reprolab.uni.example/lti/launch",
                "https://reprolab.uni.example/w/x", "javascript:alert(1)", "https://courses.uni.example/other/"):
        assert not target_allowed(s, base, bad), bad


def test_lms_roles_map_to_workspace_roles() -> None:
    assert workspace_role([M + "membership#Instructor"]) == INSTRUCTOR
    assert workspace_role([M + "membership/Instructor#TeachingAssistant"]) == INSTRUCTOR
    assert workspace_role([M + "membership#ContentDeveloper", M + "membership#Learner"]) == INSTRUCTOR
    assert workspace_role([M + "membership#Learner"]) == STUDENT
    # an LMS administrator is not an instructor of every course
    assert workspace_role([M + "institution/person#Administrator", M + "system/person#Administrator"]) == STUDENT
    assert workspace_role([]) == STUDENT
