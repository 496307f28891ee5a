"""thinkcap/http_wait.py: the port every child server of the tests, the demo and the benches is given."""

import socket

from thinkcap.http_wait import PORTS_FROM, ephemeral_range, free_port


def test_free_port_is_bindable_and_outside_the_ephemeral_range() -> None:
    # A bind(0) port comes from the ephemeral range, where vLLM's own sockets and outgoing connections
    # can take it before the demo binds it (a CI run lost the demo that way); free_port stays below it.
    low, _ = ephemeral_range()
    ports = {free_port() for _ in range(20)}
    assert all(PORTS_FROM <= p < low for p in ports), ports
    assert len(ports) > 1  # drawn, not one fixed port every process would race for
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


def test_free_port_skips_a_taken_port(monkeypatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", free_port()))
        taken = held.getsockname()[1]
        # Only the taken port and one other are on offer: the taken one must be passed over.
        monkeypatch.setattr("thinkcap.http_wait.PORTS_FROM", taken)
        monkeypatch.setattr("thinkcap.http_wait.ephemeral_range", lambda: (taken + 2, 60999))
        assert all(free_port() == taken + 1 for _ in range(10))
