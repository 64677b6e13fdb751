import pytest

from chaos.proxy import addr


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:80", ("127.0.0.1", 80)),
    ("[::1]:8474", ("::1", 8474)),
    (":0", ("", 0)),
    ("redis:6379", ("redis", 6379)),
])
def test_split(text, expected):
    assert addr.split(text) == expected


@pytest.mark.parametrize("text", ["nohost", "host:port", "host:70000"])
def test_split_rejects(text):
    with pytest.raises(addr.AddressError):
        addr.split(text)


def test_join_and_loopback():
    assert addr.join("::1", 1) == "[::1]:1"
    assert addr.join("127.0.0.1", 2) == "127.0.0.1:2"
    assert addr.is_loopback("127.0.0.5") and addr.is_loopback("::1") and addr.is_loopback("localhost")
    assert not addr.is_loopback("0.0.0.0") and not addr.is_loopback("10.0.0.1")
