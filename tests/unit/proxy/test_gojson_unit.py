"""Bodies read and written as Toxiproxy's Go code does (encoding/json)."""

from __future__ import annotations

import pytest

from chaos.proxy.gojson import Field, Float32, GoJSONError, Struct, decode, dumps, into_struct, into_struct_list, to_float32

PROXY = Struct("Proxy", "toxiproxy.Proxy", (Field("name", "string"), Field("enabled", "bool"),
                                           Field("toxicity", "float32"), Field("n", "int64")))


@pytest.mark.parametrize(("body", "message"), [
    (b"", "EOF"), (b" \n", "EOF"), (b"{", "unexpected EOF"), (b'{"a":1,}',
     "invalid character '}' looking for beginning of object key string"),
    (b"[1 2]", "invalid character '2' after array element"), (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
    (b"nxll", "invalid character 'x' in literal null (expecting 'u')"), (b"1.", "unexpected EOF"),
    (b"1.x", "invalid character 'x' after decimal point in numeric literal"), (b'"\\q"',
     "invalid character 'q' in string escape code"), (b"\x01", "invalid character '\\x01' looking for beginning of value"),
    (b"NaN", "invalid character 'N' looking for beginning of value"), (b"[" * 10001, "exceeded max depth"),
])
def test_syntax_errors_are_worded_as_go(body, message):
    with pytest.raises(GoJSONError) as err:
        decode(body)
    assert str(err.value) == message


def test_only_the_first_value_counts():
    assert decode(b'{"a": 1} trailing garbage') == {"a": 1}
    assert decode(b"  [1]]]") == [1]


def test_struct_decoding_follows_go():
    fields, error = into_struct(decode(b'{"NAME": "a", "enabled": null, "other": [1], "n": 3}'), PROXY)
    assert fields == {"name": "a", "n": 3} and error is None  # any case, null ignored, unknown ignored
    fields, error = into_struct(decode(b'{"name": 5, "n": 1.5, "enabled": true}'), PROXY)
    assert fields == {"enabled": True}  # Go keeps going after a type error and reports the first
    assert error == "json: cannot unmarshal number into Go struct field Proxy.name of type string"
    assert into_struct(decode(b'{"n": 1e3}'), PROXY)[1].endswith("number 1e3 into Go struct field Proxy.n of type int64")
    assert into_struct(decode(b'{"n": 9223372036854775808}'), PROXY)[1].startswith(
        "json: cannot unmarshal number 9223372036854775808")
    assert into_struct(decode(b"[]"), PROXY)[1] == "json: cannot unmarshal array into Go value of type toxiproxy.Proxy"
    assert into_struct(decode(b'{"toxicity": 1e300}'), PROXY)[1].endswith("of type float32")
    items, error = into_struct_list(decode(b'[{"name": "a"}, null, {"name": true}]'), PROXY)
    assert items[:2] == [{"name": "a"}, {}] and error.endswith("Proxy.name of type string")
    assert into_struct_list(decode(b"{}"), PROXY)[1] == ("json: cannot unmarshal object into Go value of type "
                                                         "[]toxiproxy.Proxy")


def test_writing_is_go_marshal():
    assert dumps({"b": [1, True, None], "a": "<&>"}) == '{"b":[1,true,null],"a":"\\u003c\\u0026\\u003e"}'
    for given, text in ((1.0, "1"), (0.5, "0.5"), (0.1, "0.1"), (0.7, "0.7"), (1e-5, "0.00001"), (1e-7, "1e-7"),
                        (2.0, "2"), (3e25, "3e+25"), (123456789.0, "123456790")):
        assert dumps(Float32(to_float32(given))) == text
