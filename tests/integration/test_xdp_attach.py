"""Attaching and detaching the kernel sensor on a veth (root only).

Native and generic XDP, the tc egress program of --direction both, the
status a CLI shows, and cleanup after a sensor killed with SIGKILL: in every
case nothing may stay on the interface. The sensor attaches through bpf
links (XDP and tcx), which the kernel takes away with a killed process;
``links=False`` is the netlink and clsact path of kernels without them
(before 6.6 for tcx), tested here too.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from helpers import nothing_attached_soon
from xdp_lab import AgentError, IF_B, lab, requires_xdp, run  # noqa: F401 (fixtures)

pytestmark = requires_xdp


def test_attach_native_then_generic_and_detach_leaves_nothing(lab):
    srv = lab.server
    srv.call("open")
    try:
        for mode in ("native", "generic"):
            att = srv.call("attach", ifname=IF_B, mode=mode)
            assert att == {"mode": mode, "egress": False, "links": True}
            st = srv.call("status", ifname=IF_B)
            assert [(m, name) for m, _, name in st["xdp"]] == [(mode, "pk_xdp")]
            assert st["ours"]
            shown = lab.link_state()
            assert ("xdpgeneric" if mode == "generic" else "prog/xdp") in shown
            srv.call("detach", ifname=IF_B)
            lab.assert_nothing_attached()
            assert srv.call("status", ifname=IF_B)["xdp"] == []
    finally:
        srv.call("close")


@pytest.mark.parametrize("links", [True, False], ids=["links", "netlink"])
def test_auto_mode_picks_native_on_veth_and_both_adds_tc_egress(lab, links):
    srv = lab.server
    srv.call("open", links=links)
    try:
        att = srv.call("attach", ifname=IF_B, mode="auto", direction="both")
        assert att == {"mode": "native", "egress": True, "links": links}
        st = srv.call("status", ifname=IF_B)
        # a tcx link needs no qdisc; the netlink path adds clsact
        assert st["tc_egress"] == ["pk_tc_egress"] and st["clsact"] is not links
        srv.call("detach")
        lab.assert_nothing_attached()
        # The clsact qdisc we added is gone too.
        assert srv.call("status", ifname=IF_B)["clsact"] is False
    finally:
        srv.call("close")


@contextmanager
def _sensor_and_newcomer(lab, links=True):
    """The lab's sensor, opened, and a maker of a second one in the same
    namespace (another tool taking the interface); both closed after."""
    srv = lab.server
    srv.call("open", links=links)
    others = []

    def newcomer():
        other = lab.agent(lab.ns_b, "newcomer")
        others.append(other)
        other.call("open", links=links)
        return other
    try:
        yield srv, newcomer
    finally:
        srv.call("close")
        for other in others:
            other.call("close")
            other.close()


@pytest.mark.parametrize("links", [True, False], ids=["links", "netlink"])
def test_an_interface_deleted_and_its_name_reused_is_left_to_its_new_owner(lab, links):
    """The veth goes away under the sensor (its programs with it) and a new
    interface takes the name, with another sensor's program on it: the
    first sensor sees its interface gone, and its detach must not remove
    the newcomer's program (bcc detaches by name)."""
    with _sensor_and_newcomer(lab, links) as (srv, newcomer):
        srv.call("attach", ifname=IF_B, direction="both")
        assert srv.call("vanished") == []
        run("ip", "-n", lab.ns_b, "link", "del", IF_B)
        assert srv.call("vanished") == [IF_B]
        run("ip", "-n", lab.ns_b, "link", "add", IF_B, "type", "veth", "peer", "name",
            IF_B + "p")
        run("ip", "-n", lab.ns_b, "link", "set", IF_B, "up")
        assert srv.call("vanished") == [IF_B]  # the name is back, another interface
        assert newcomer().call("attach", ifname=IF_B, direction="both") == {
            "mode": "native", "egress": True, "links": links}
        srv.call("detach")  # no error: nothing of its own is left to remove
        st = srv.call("status", ifname=IF_B)
        assert [(m, name) for m, _, name in st["xdp"]] == [("native", "pk_xdp")]
        assert st["tc_egress"] == ["pk_tc_egress"]
    lab.assert_nothing_attached()


@pytest.mark.parametrize("links", [True, False], ids=["links", "netlink"])
def test_a_program_removed_or_replaced_by_another_tool_is_seen_and_left_alone(lab, links):
    """Another tool removes the sensor's program under it, and another sensor
    (any XDP tool) may then attach its own: the first sees its program
    displaced, and its detach leaves the newcomer's in place (bcc's removal
    goes by interface name, whatever program is there). Through netlink,
    `ip link set dev X xdp off` removes it; a bpf link it cannot (the
    kernel refuses to replace an active link): `pakemon-xdp detach` from
    another process does, detaching the link."""
    with _sensor_and_newcomer(lab, links) as (srv, newcomer):
        srv.call("attach", ifname=IF_B)
        assert srv.call("displaced") == []
        off = run("ip", "-n", lab.ns_b, "link", "set", "dev", IF_B, "xdp", "off",
                  check=not links)
        if links:
            assert srv.call("displaced") == []  # refused: still there
            assert "prog/xdp" in lab.link_state(), off
            other = newcomer()
            assert other.call("detach_interface", ifname=IF_B)[0].startswith("XDP native")
        assert srv.call("displaced") == [IF_B]
        other = newcomer()
        other.call("attach", ifname=IF_B)
        assert srv.call("displaced") == [IF_B]
        srv.call("detach")  # no error, the newcomer's program untouched
        st = other.call("status", ifname=IF_B)
        assert [(m, name) for m, _, name in st["xdp"]] == [("native", "pk_xdp")]
        assert other.call("displaced") == []
    lab.assert_nothing_attached()


def test_second_attach_is_refused_with_a_message(lab):
    srv = lab.server
    srv.call("open")
    try:
        srv.call("attach", ifname=IF_B)
        with pytest.raises(AgentError, match="already attached"):
            srv.call("attach", ifname=IF_B)
        other = lab.agent(lab.ns_b, "second-sensor")
        try:
            other.call("open")
            with pytest.raises(AgentError, match="an XDP program is already attached"):
                other.call("attach", ifname=IF_B)
        finally:
            other.call("close")
            other.close()
    finally:
        srv.call("close")
    lab.assert_nothing_attached()


def test_errors_name_the_problem(lab):
    srv = lab.server
    srv.call("open")
    try:
        with pytest.raises(AgentError, match="SensorError: no such interface: nosuch0"):
            srv.call("attach", ifname="nosuch0")
        with pytest.raises(AgentError, match="XDP mode must be one of"):
            srv.call("attach", ifname=IF_B, mode="turbo")
        with pytest.raises(AgentError, match="snaplen must be"):
            srv.call("configure", snaplen=0)
    finally:
        srv.call("close")
    with pytest.raises(AgentError, match="SensorError: no such interface"):
        srv.call("status", ifname="nosuch0")



def test_a_killed_sensor_leaves_nothing_behind(lab):
    """SIGKILL, no atexit, no detach: the kernel detaches the bpf links'
    programs with the process, native and generic XDP, tc egress too."""
    for mode in ("native", "generic"):
        victim = lab.agent(lab.ns_b, f"killed-{mode}")
        victim.call("open")
        att = victim.call("attach", ifname=IF_B, mode=mode, direction="both")
        assert att == {"mode": mode, "egress": True, "links": True}
        assert "pk_tc_egress" in lab.link_state()
        victim.kill()
        nothing_attached_soon(lab)
        r = lab.server.call("detach_interface", ifname=IF_B)
        assert r == []  # nothing was left to remove


def test_detach_interface_takes_a_hung_sensors_links(lab):
    """A sensor stopped (SIGSTOP: hung, not dead) keeps its links; `detach`
    from another process detaches them, and the sensor, resumed, closes
    without an error and without touching what came after."""
    import signal

    victim = lab.agent(lab.ns_b, "hung-sensor")
    victim.call("open")
    victim.call("attach", ifname=IF_B, mode="native", direction="both")
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        removed = lab.server.call("detach_interface", ifname=IF_B)
        assert [r.split(" id ")[0] for r in removed] == ["XDP native", "tc egress pk_tc_egress"]
        lab.assert_nothing_attached()
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    assert victim.call("displaced") == [IF_B]
    victim.call("close")  # closing the defunct links: no error
    victim.close()
    lab.assert_nothing_attached()


def test_detach_interface_cleans_up_after_a_killed_netlink_sensor(lab):
    """Without bpf links (older kernels) the programs outlive a killed
    sensor; `detach` removes them."""
    victim = lab.agent(lab.ns_b, "killed-sensor")
    victim.call("open", links=False)
    victim.call("attach", ifname=IF_B, mode="generic", direction="both")
    victim.kill()  # SIGKILL: no atexit, no detach
    st = lab.server.call("status", ifname=IF_B)
    assert st["ours"] and st["tc_egress"] == ["pk_tc_egress"]
    assert [m for m, _, _ in st["xdp"]] == ["generic"]
    removed = lab.server.call("detach_interface", ifname=IF_B)
    assert any(r.startswith("XDP generic") for r in removed)
    assert "tc egress pk_tc_egress" in removed
    lab.assert_nothing_attached()
    # A new sensor attaches cleanly afterwards.
    lab.server.call("open")
    try:
        assert lab.server.call("attach", ifname=IF_B)["mode"] == "native"
    finally:
        lab.server.call("close")
    lab.assert_nothing_attached()


def test_detach_takes_only_its_own_namespaces_links(lab):
    """Link ids are global and interface indexes are per namespace: two
    sensors on interfaces of the same index in two namespaces, and `detach`
    in one takes that one's programs alone."""
    for ns in (lab.ns_a, lab.ns_b):
        run("ip", "-n", ns, "link", "add", "pkxt", "index", "77", "type", "veth",
            "peer", "name", "pkxu")
        run("ip", "-n", ns, "link", "set", "pkxt", "up")
    other = lab.agent(lab.ns_a, "neighbour")
    try:
        other.call("open")
        lab.server.call("open")
        for agent in (other, lab.server):
            assert agent.call("attach", ifname="pkxt", direction="both")["links"]
        removed = lab.server.call("detach_interface", ifname="pkxt")
        assert [r.split(" id ")[0] for r in removed] == ["XDP native", "tc egress pk_tc_egress"]
        assert lab.server.call("status", ifname="pkxt")["xdp"] == []
        st = other.call("status", ifname="pkxt")
        assert [(m, name) for m, _, name in st["xdp"]] == [("native", "pk_xdp")]
        assert st["tc_egress"] == ["pk_tc_egress"]
        assert other.call("displaced") == [] and lab.server.call("displaced") == ["pkxt"]
    finally:
        other.call("close")
        other.close()
        lab.server.call("close")
