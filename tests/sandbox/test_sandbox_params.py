"""Parameters are parsed back into typed values and checked against the action's inputSchema."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_facebody20191230 import models as fb
from alibabacloud_tea_openapi.exceptions import ClientException

from sandbox.errors import ParameterError
from sandbox.params import ParamParser

SCHEMA = {
    "type": "object",
    "properties": {
        "ImageURL": {"type": "string", "pattern": "^https?://"},
        "MaxFaceNumber": {"type": "integer", "minimum": 1},
        "Landmark": {"type": "boolean"},
        "Threshold": {"type": "number"},
        "Tasks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"ImageURL": {"type": "string"}, "imageData": {"type": "string"}},
                "additionalProperties": False,
                "required": ["ImageURL"],
            },
        },
        "Names": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
    "required": ["ImageURL"],
}


def parse(**flat: str) -> dict[str, Any]:
    return ParamParser(SCHEMA).parse({key.replace("__", "."): value for key, value in flat.items()})


def test_wire_strings_become_typed_values() -> None:
    params = parse(
        ImageURL="http://a/b",
        MaxFaceNumber="3",
        Landmark="True",
        Threshold="70.0",
        Tasks__2__ImageURL="http://x/2",
        Tasks__1__ImageURL="http://x/1",
        Tasks__1__ImageData="QQ==",
        Names__1="a",
        Names__2="b",
        Unknown="ignored",
    )
    assert params == {
        "ImageURL": "http://a/b",
        "MaxFaceNumber": 3,
        "Landmark": True,
        "Threshold": 70.0,
        "Tasks": [{"ImageURL": "http://x/1", "imageData": "QQ=="}, {"ImageURL": "http://x/2"}],
        "Names": ["a", "b"],
    }


def test_lists_may_arrive_as_one_json_string() -> None:
    params = parse(ImageURL="http://a/b", Tasks='[{"ImageURL": "http://x/1", "Extra": 1}]')
    assert params["Tasks"] == [{"ImageURL": "http://x/1"}]


@pytest.mark.parametrize(
    ("flat", "code", "message"),
    [
        ({}, "MissingImageURL", "ImageURL is mandatory for this action."),
        ({"ImageURL": ""}, "MissingImageURL", "ImageURL is mandatory for this action."),
        ({"ImageURL": "http://a", "Tasks.1.imageData": "QQ=="}, "MissingTasks.1.ImageURL", None),
        ({"ImageURL": "http://a", "MaxFaceNumber": "three"}, "InvalidParameter", None),
        ({"ImageURL": "http://a", "MaxFaceNumber": "0"}, "InvalidParameter", None),
        ({"ImageURL": "http://a", "Landmark": "yes"}, "InvalidParameter", None),
        ({"ImageURL": "http://a", "Threshold": "nan"}, "InvalidParameter", None),
        ({"ImageURL": "http://a", "Tasks": "[]"}, "InvalidParameter", None),
        ({"ImageURL": "http://a", "Tasks": "{not json"}, "InvalidParameter", None),
        ({"ImageURL": "ftp://a"}, "IllegalUrlParameter", None),
    ],
)
def test_bad_parameters_are_refused(flat: dict[str, str], code: str, message: str | None) -> None:
    with pytest.raises(ParameterError) as caught:
        ParamParser(SCHEMA).parse(flat)
    assert caught.value.code == code
    assert caught.value.status == 400
    if message:
        assert caught.value.message == message


@pytest.mark.asyncio
async def test_sdk_sees_missing_param(facebody: Any, runtime: Any) -> None:
    with pytest.raises(ClientException) as caught:
        await facebody().detect_face_with_options_async(fb.DetectFaceRequest(landmark=True), runtime())
    assert (caught.value.code, caught.value.status_code) == ("MissingImageURL", 400)
    assert caught.value.data["Message"] == "ImageURL is mandatory for this action."


@pytest.mark.asyncio
async def test_sdk_sees_wrong_type(facebody: Any, runtime: Any) -> None:
    request = fb.DetectFaceRequest(image_url="https://example.com/a.jpg", max_face_number="many")
    with pytest.raises(ClientException) as caught:
        await facebody().detect_face_with_options_async(request, runtime())
    assert (caught.value.code, caught.value.status_code) == ("InvalidParameter", 400)
    assert "MaxFaceNumber" in caught.value.data["Message"]


@pytest.mark.asyncio
async def test_sdk_sees_missing_field_inside_a_json_list(facebody: Any, runtime: Any) -> None:
    request = fb.BatchAddFacesRequest(db_name="db", entity_id="e", faces=[fb.BatchAddFacesRequestFaces(extra_data="x")])
    with pytest.raises(ClientException) as caught:
        await facebody().batch_add_faces_with_options_async(request, runtime())
    assert caught.value.code == "MissingFaces.1.ImageURL"
