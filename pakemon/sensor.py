"""The live sensor's commands: ``attach``, ``detach``, ``status`` (and ``lab``).

Stage: capture (live edge), wiring only. ``pakemon-xdp attach IFACE`` puts
the kernel sensor (``pakemon.capture.xdp.XdpSensor``) in front of the same
sans-I/O ``Pipeline`` that ``pakemon-xdp read`` uses, and the same logs
behind it::

    perf ring -> PerfRecord -> Pipeline.feed(ts, frame, 1, wire_len) -> events
        -> LogSet (alert.log, dump.log, eve.json) and one line per alert on stdout
    StreamBypass (stream depth reached)  -> the flow's kernel bypass entry
    alert, with --block                  -> the flow's kernel block entry,
                                            the alert's EVE action "blocked"
    TCP alert, with --reset              -> a RST to each end (pakemon.respond),
                                            the alert's EVE action "blocked"

Without ``--reset`` (and ``--block``) the sensor is passive: it sends nothing.

Signals: SIGINT and SIGTERM stop the loop; the program is detached first,
the records still in the ring are read, the pipeline is flushed (its
events logged), then the counters table is printed (the kernel's frames and
bytes by the paper's section 4.2 classes, candidates, passed over,
bypassed, blocked, perf losses per CPU, then the pipeline's own summary)
and the exit code is 0. SIGHUP reopens the logs by name (logrotate) and
reloads the rule file: on an error the
reason is printed and the old rules stay; on success a new RuleTree
replaces the pipeline's and the kernel's service map is updated in place
(the program is not reloaded). TCP directions already open keep the
service nodes they were classified with until they end (their match state
refers to them); new directions and every datagram use the new rules.

Kernel bypass: a TCP direction past ``--stream-depth`` needs nothing more.
Both directions of the flow are then bypassed in the kernel when the other
direction is not inspected by any rule (or has reached its depth too);
otherwise the flow keeps coming, because the inspected direction's window
checks need the other side's ACKs.

Known limit: a bypassed connection closes unseen, so the pipeline keeps its
session (state only) until the session's idle timeout; a new connection on
the same 4-tuple after the kernel's bypass entry expired (60 s idle) meets
that stale session and is not inspected until it times out.

Nothing here raises to the user: a ``SensorError`` (no such interface, not
root, no BPF, kernel headers missing, ...) is printed as one line and the
exit code is ``EXIT_SENSOR``.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import sys
import time
from collections import OrderedDict
from dataclasses import replace

from .abi import BLOCK_MAX, EVF
from .decode import DecodeError, decode_frame
from .decode.packet import LINKTYPE_ETHERNET
from .events import Alert
from .output.eve import stamp_alerts
from .cli import (
    EXIT_CODES,
    EXIT_IO,
    EXIT_OK,
    EXIT_SENSOR,
    _err,
    _show,
    _size,
    _summary,
    add_engine_options,
    build_pipeline,
    open_logs,
    report_log_losses,
    save_datasets,
    add_output_options,
    add_rule_options,
    serve_metrics,
    load_rules_args,
)

__all__ = ["EXIT_SENSOR", "add_sensor_commands", "run_attach", "run_detach", "run_status",
           "LiveSession", "SENSOR_EXIT_CODES"]

# EXIT_CODES (from cli) already explains EXIT_SENSOR; attach adds one case.
SENSOR_EXIT_CODES = EXIT_CODES + (
    f"     ({EXIT_SENSOR} also: an XDP program already attached; the message says\n"
    "     which; or the interface disappeared while attached, or another tool\n"
    "     removed or replaced the XDP program: the logs hold all that came before)\n")

# Wall-clock seconds between counter snapshots in the loop.
SNAPSHOT_EVERY_S = 5.0

# Plain ints for the per-record test: `int & IntFlag` goes through the enum
# machinery (Flag.__and__, a new member), several times the cost of int &
# int (py-spy: 2% of the live sensor's time at top speed).
_SNAPLEN_CUT = int(EVF.SNAPLEN)
_HDR_ONLY = int(EVF.HDR_ONLY)
# Perf ring wait per poll (ms): the longest a signal waits to be seen.
POLL_MS = 200
# How often the loop checks that the interface is still there: a deleted
# interface takes the programs with it, and the sensor would wait forever.
# (Whether its XDP program is still ours, a netlink dump of ~5 ms, is
# checked at the snapshots.)
LINK_CHECK_S = 1.0
LINK_GONE = "nothing left to watch"  # _Signals.stop then
# TCP directions past their depth whose peer is still inspected, remembered
# until the peer reaches its depth too (then both are bypassed).
BYPASS_PENDING_MAX = 65536
# A frame at least this long is not cut by the snaplen on a 1500-byte MTU.
FULL_FRAME = 1514
# Internal errors reported one by one (all are counted).
MAX_ERRORS_SHOWN = 10


# ---- the loop's state (no signals, no kernel calls of its own) -------------

# Which alerts --reset and --block answer. Native rules are the paper's
# attack signatures: each alert is answered. A Suricata rule says it by its
# action, as in Suricata: `reject` resets (and drops), `drop` drops, `alert`
# only alerts. ET Open ships every rule as `alert` (INFO and POLICY ones
# too, which fire on benign traffic); suricata-update's drop.conf and
# modify.conf are how a Suricata user makes chosen rules drop or reject.
RESET_ACTIONS = frozenset({"reject"})
BLOCK_ACTIONS = frozenset({"drop", "reject"})
_ANY_RESPONSE = RESET_ACTIONS | BLOCK_ACTIONS


def answers(alert, actions) -> bool:
    """Whether ``alert``'s rule asks for a response in ``actions``."""
    meta = getattr(alert.rule, "meta", None) or {}
    return meta.get("format") != "suricata" or meta.get("action") in actions


class LiveSession:
    """Records in, events out: what ``attach`` does with each poll.

    ``sensor`` needs only ``bypass_flow`` and ``block_flow`` (tests pass a
    stand-in); ``pipe`` is a Pipeline whose ``bypass_requests`` this
    session sets and drains.
    """

    def __init__(self, sensor, pipe, logs, *, block: bool = False, show: bool = True,
                 resetter=None) -> None:
        self.sensor = sensor
        self.resetter = resetter  # a pakemon.respond.Resetter with --reset
        self.metrics = None  # the --metrics exporter, set by run_attach
        self.pipe = pipe
        self.logs = logs
        self.block = block
        self.show = show
        pipe.bypass_requests = []
        self.records = 0
        self.truncated_frames = 0  # data records cut at the snaplen
        self.truncated_bytes = 0  # their wire bytes never inspected
        self.flows_bypassed = 0  # bypass_flow calls (both directions each)
        self.flows_blocked = 0  # block_flow calls
        self.alert_only = 0  # alerts of Suricata `alert` rules, left unanswered by design
        self.kernel_errors = 0  # bypass/block calls the kernel refused
        self.internal_errors = 0  # records the pipeline raised on (a bug)
        self._pending: OrderedDict = OrderedDict()  # direction -> None
        self.snapshot: dict = {}  # the kernel counters of the last snapshot
        self._blocked: OrderedDict = OrderedDict()  # flows marked, newest last

    def handle(self, records) -> int:
        """Feed records to the pipeline; log and act on their events."""
        feed = self.pipe.feed
        pcap = getattr(self.logs, "pcaplog", None)  # --pcap-log
        n_events = 0
        for rec in records:
            self.records += 1
            flags = rec.flags
            if flags & _SNAPLEN_CUT and not flags & _HDR_ONLY:
                # A whole-frame record cut at the snaplen: the missing bytes
                # were meant for inspection. Header-only records miss only
                # payload nobody inspects.
                self.truncated_frames += 1
                self.truncated_bytes += rec.wire_len - len(rec.frame)
            try:
                events = feed(rec.ts, rec.frame, 1, rec.wire_len)
            except Exception as e:  # a bug must not blind the sensor for good
                self.internal_errors += 1
                if self.internal_errors <= MAX_ERRORS_SHOWN:
                    _err(f"internal error on a record of {len(rec.frame)} bytes "
                         f"({type(e).__name__}: {e}); record skipped")
                continue
            if pcap is not None:
                pcap.feed(rec.ts, rec.frame, 1, events, rec.wire_len)
            if events:
                n_events += len(events)
                stamp_alerts(events, rec.frame, 1)
                self.events(events, rec.frame, flush=False)
        if n_events:
            # once a batch: a flush a record cost an alert flood a fifth of
            # its time (three write(2) calls a frame)
            self.logs.flush()
        if self.pipe.bypass_requests:
            self._bypass()
        return n_events

    def events(self, events, frame: bytes | None = None, flush: bool = True) -> None:
        if self.resetter is not None or self.block:
            self.alert_only += sum(1 for ev in events if isinstance(ev, Alert)
                                   and not answers(ev, _ANY_RESPONSE))
        if self.resetter is not None:  # before logging: the action says "blocked"
            events = self._reset(events, frame)
        if self.block:  # first: every packet until then passes
            # a drop (or reject) rule's alert whose flow the kernel now
            # drops says so, as Suricata's IPS mode logs it
            out = []
            for ev in events:
                if isinstance(ev, Alert) and answers(ev, BLOCK_ACTIONS) and self._block(ev) \
                        and ev.action != "blocked":
                    ev = replace(ev, action="blocked")
                out.append(ev)
            events = out
        self.logs.write_many(events, lazy=not flush)
        if self.show:
            _show(events)
            sys.stdout.flush()

    def _bypass(self) -> None:
        reqs = self.pipe.bypass_requests
        self.pipe.bypass_requests = []
        tree = self.pipe.tree
        pending = self._pending
        for src, dst, sport, dport, proto in reqs:
            peer = (dst, src, dport, sport)
            if peer in pending or not tree.lookup("tcp", dport, sport):
                pending.pop(peer, None)
                try:
                    self.sensor.bypass_flow(src, dst, sport, dport, proto, both=True)
                    self.flows_bypassed += 1
                except Exception:
                    self.kernel_errors += 1
            else:
                pending[(src, dst, sport, dport)] = None
                while len(pending) > BYPASS_PENDING_MAX:
                    pending.popitem(last=False)

    def _reset(self, events, frame):
        """RST both ends of each TCP alert's connection (an alert a response
        is asked for: ``answers``); those alerts become "blocked"."""
        from .respond.reset import frame_ack

        out = []
        done = set()
        pkt = None  # the frame decoded again, once, for its VLAN IDs and ACK
        for ev in events:
            if isinstance(ev, Alert) and ev.ip_proto == 6 and ev.src_port is not None:
                if not answers(ev, RESET_ACTIONS):
                    out.append(ev)
                    continue
                if pkt is None and frame is not None:
                    try:  # a record cut at the snaplen: its length fields exceed it
                        pkt = decode_frame(LINKTYPE_ETHERNET, frame, 0.0, 1 << 16)
                    except DecodeError:
                        frame = None
                d = self._direction(ev, pkt)
                if d is not None:
                    if id(d) in done or self.resetter.reset(d, frame_ack(pkt, d)):
                        done.add(id(d))
                        ev = replace(ev, action="blocked")
                else:
                    self.resetter.skipped += 1
            out.append(ev)
        return out

    def _direction(self, ev, pkt=None):
        """The TcpDirection an alert's packet was sent in, or None.

        A VLAN's connection is keyed by its VLAN IDs too, which an alert does
        not carry: they come from the packet that raised it (``pkt``, both
        directions of a flow share them). A tunnel's flow is left alone: the
        stack would send a plain RST to the inner addresses, outside the
        tunnel."""
        fam = socket.AF_INET6 if ":" in ev.src_ip else socket.AF_INET
        try:
            key = (socket.inet_pton(fam, ev.src_ip), ev.src_port,
                   socket.inet_pton(fam, ev.dst_ip), ev.dst_port)
        except OSError:
            return None
        if pkt is not None and pkt.vlan and {(pkt.src, pkt.sport), (pkt.dst, pkt.dport)} \
                == {key[:2], key[2:]}:  # the packet is of the alert's flow
            if not all(type(z) is int for z in pkt.vlan):
                return None  # a tunnel's
            return self.pipe.tcp._dirs.get(key + (pkt.vlan,))
        return self.pipe.tcp._dirs.get(key)

    def _block(self, ev) -> bool:
        """Whether the kernel drops ``ev``'s flow from now on (a block entry
        made now or before)."""
        proto = ev.ip_proto
        if proto in (6, 17) and (ev.src_port is None or ev.dst_port is None):
            return False  # an `ip` rule's alert: no ports to name the flow by
        key = (ev.src_ip, ev.dst_ip, ev.src_port or 0, ev.dst_port or 0, proto)
        if key in self._blocked:
            return True
        try:
            self.sensor.block_flow(*key, both=True)
            self.flows_blocked += 1
        except Exception:
            self.kernel_errors += 1
            return False
        self._blocked[key] = None
        if len(self._blocked) > BLOCK_MAX:  # the kernel's LRU forgets them too
            self._blocked.popitem(last=False)
        return True

    def flush(self) -> None:
        """End of input: the pipeline's last events."""
        events = self.pipe.flush()
        if events:
            self.events(events)
        save_datasets(self.pipe)


def kernel_table(c: dict, lost: dict, *, iface: str = "", mode: str = "", egress: bool = False,
                 session: LiveSession | None = None, bypass_entries: int | None = None,
                 block_entries: int | None = None) -> str:
    """The kernel counters as the paper's section 4.2 table plus the rest.

    c: ``XdpSensor.counters()``; lost: ``lost_per_cpu()``. One ``name  value``
    line per figure, so scripts can read it.
    """
    total = c.get("frames", 0)
    out = []
    where = f" on {iface}" if iface else ""
    hooks = f" ({mode} XDP{', tc egress' if egress else ''})" if mode else ""
    out.append(f"kernel sensor{where}{hooks}")
    out.append(f"{'Protocol':<9}{'Frames':>12}{'%':>9}{'Bytes':>15}")
    rows = [("ALL", "frames", "bytes"), ("IP", "ip_frames", "ip_bytes"),
            ("TCP", "tcp_frames", "tcp_bytes"), ("UDP", "udp_frames", "udp_bytes"),
            ("ICMP", "icmp_frames", "icmp_bytes"), ("OTHER", "other_frames", "other_bytes")]
    for name, fk, bk in rows:
        n = c.get(fk, 0)
        pct = 100.0 * n / total if total else 0.0
        out.append(f"{name:<9}{n:>12}{pct:>9.2f}{c.get(bk, 0):>15}")
    out.append("")

    def line(name, value, note=""):
        out.append(f"{name:<22}{value:>10}" + (f"  {note}" if note else ""))

    line("candidates", c.get("candidates", 0),
         f"{c.get('candidate_bytes', 0)} bytes pushed to the pipeline")
    line("header-only", c.get("hdr_only", 0), "reverse TCP directions and probes, cut after "
         "the transport header")
    line("fragments", c.get("fragments", 0))
    line("passed over", c.get("passed_over", 0), "no rule can match: not pushed")
    line("bypassed", c.get("bypassed", 0),
         f"frames of bypassed flows; {c.get('bypass_expired', 0)} entries expired")
    line("blocked", c.get("blocked", 0), "frames dropped")
    line("malformed", c.get("malformed", 0), "passed")
    line("deep headers", c.get("deep_headers", 0), "VLAN tags or IPv6 extension headers "
         "past the kernel's walk: pushed whole")
    line("coalesced", c.get("coalesced", 0),
         f"server segments merged into {c.get('coalesce_records', 0)} records, "
         f"{c.get('swept_ranges', 0)} more taken by userland "
         f"({c.get('swept_frames', 0)} segments); {c.get('coalesce_full', 0)} pushed "
         "alone, the map full")
    per_cpu = dict(lost)
    for cpu in range(os.cpu_count() or 1):
        per_cpu.setdefault(cpu, 0)
    cpus = ", ".join(f"cpu{cpu} {n}" if cpu >= 0 else f"cpu? {n}"
                     for cpu, n in sorted(per_cpu.items()))
    line("perf lost", c.get("perf_lost", 0),
         f"by CPU: {cpus}; kernel perf_fail {c.get('perf_fail', 0)}")
    line("rejected records", c.get("rejected", 0))
    line("late records", c.get("late", 0), "read after a newer frame of another CPU's "
         "ring: inspected out of time order")
    if session is not None:
        line("records read", session.records)
        # perf's lost callback only reports a CPU's losses with its next
        # record; the kernel's failed outputs and the candidates never read
        # show the losses of the last burst too.
        # (records read include the ranges userland took out of the
        # pending map itself: never candidates)
        read = session.records - c.get("swept_ranges", 0)
        missing = max(c.get("perf_fail", 0), c.get("perf_lost", 0),
                      c.get("candidates", 0) - read - c.get("rejected", 0))
        line("samples lost", max(missing, 0), "the largest of perf lost, perf_fail and "
             "candidates not read")
        line("truncated frames", session.truncated_frames, "cut at the snaplen")
        line("truncated bytes", session.truncated_bytes, "of those, never inspected")
        line("flows bypassed", session.flows_bypassed,
             "stream depth reached" + (f"; {bypass_entries} entries in the map"
                                       if bypass_entries is not None else ""))
        line("flows blocked", session.flows_blocked,
             f"{block_entries} entries in the map" if block_entries is not None else "")
        rs = session.resetter
        if rs is not None:
            line("resets sent", rs.sent, f"RST packets, {rs.connections} connections; "
                 f"{rs.skipped} TCP alerts not reset, {rs.errors} send errors")
        if rs is not None or session.block:
            line("alerts only", session.alert_only,
                 "of Suricata rules whose action is alert: not "
                 + ("reset or blocked" if rs is not None and session.block else
                    "reset" if rs is not None else "blocked")
                 + " (a reject rule resets, drop and reject rules block)")
        if session.kernel_errors:
            line("kernel map errors", session.kernel_errors)
        if session.internal_errors:
            line("internal errors", session.internal_errors, "records skipped")
    return "\n".join(out)


# ---- attach ---------------------------------------------------------------

class _Signals:
    """SIGINT/SIGTERM: stop; SIGHUP: reload. Flags only: the loop acts."""

    def __init__(self) -> None:
        self.stop = None  # the signal's name once asked to stop
        self.reload = False
        self._old = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old[sig] = signal.signal(sig, self._on)

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _on(self, signum, _frame) -> None:
        if signum == signal.SIGHUP:
            self.reload = True
        else:
            self.stop = signal.Signals(signum).name


def _reopen_logs(session: LiveSession) -> None:
    """SIGHUP: reopen the log files by name (logrotate has moved them)."""
    reopen = getattr(session.logs, "reopen", None)
    if reopen is None:
        return
    try:
        reopen()
    except OSError as e:
        _err(f"reopening the logs failed: {e.strerror or e}")


def kernel_tree(tree, sig=None):
    """What the XDP service maps are filled from: the native rule tree, plus
    the ports of the Suricata rules when some are loaded."""
    if sig is None:
        return tree
    from .detect.sigengine import KernelTree

    return KernelTree(tree, sig)


def _rules_text(args) -> str:
    paths = args.rules or []
    return ", ".join(str(p) for p in paths) or "the bundled rules"


def _reload(args, session: LiveSession, sensor, current):
    """SIGHUP: the new rule set, or the current one after saying why not."""
    from .detect.ruletree import RuleTree
    from .stream import StreamTracker

    names = _rules_text(args)
    rs = load_rules_args(args)
    if rs is None:
        _err(f"reload of {names} failed: keeping the {current.count} rules loaded")
        return current
    tree = RuleTree(rs.rules)
    pipe = session.pipe
    try:
        counts = sensor.set_services(kernel_tree(tree, rs.sig))
    except Exception as e:  # SensorError, or bcc refusing a map update
        _err(f"reload of {names}: the kernel service map could not be updated ({e}); "
             f"keeping the {current.count} rules loaded")
        try:
            sensor.set_services(kernel_tree(pipe.tree, getattr(current, "sig", None)))
        except Exception:
            pass
        return current
    pipe.tree = tree
    pipe.detector.tree = tree
    # Suricata rules: a new engine (flowbits and thresholds start afresh);
    # directions already open keep their reassembly, and are wanted by the
    # new rules if Suricata rules are still loaded.
    pipe.set_sig(rs.sig)
    # Datagram flows remember which rules alerted by index in the old tree.
    pipe.flows = StreamTracker()
    _err(f"reloaded {names}: {rs.count} rules, {counts['keys']} service keys "
         f"(+{counts['added']} -{counts['removed']}), any-port bits {counts['any_ports']:#x}")
    return rs


def live_pipeline(pipe) -> None:
    """What the pipeline is not told by frames from the kernel's rings:
    the server's side may be incomplete, so the stream stage's ack check is
    off. The rings are merged in time order (``TimeOrder``), so an ACK no
    longer comes before the data it acknowledges, but a server frame can
    still be missing (a sample the ring lost) or come too late (a record
    later than the merge's slack). Its client's next ACK would then look
    like one of unsent data, and a real segment would be dropped."""
    pipe.tcp.ack_check = False


def run_attach(args) -> int:
    from .capture import xdp

    built = build_pipeline(args)
    if isinstance(built, int):
        return built
    rs, pipe = built
    live_pipeline(pipe)
    metrics = serve_metrics(args, pipe)
    if isinstance(metrics, int):
        return metrics
    tree = pipe.tree
    direction = "both" if args.direction == "both" else "in"
    if args.snaplen < FULL_FRAME:
        _err(f"warning: --snaplen {args.snaplen} cuts full-size frames: bytes past it are "
             "not inspected (counted as truncated bytes), and a TCP stream cut this way "
             "waits for its missing bytes until it ends")
    try:
        # The cheap checks first: nothing is compiled or opened for a sensor
        # that cannot run.
        xdp.interface_index(args.iface)
        xdp._need_root()
    except xdp.SensorError as e:
        _err(str(e))
        return EXIT_SENSOR
    logs = open_logs(args)
    if isinstance(logs, int):
        return logs
    sig = _Signals()
    sig.install()
    sensor = None
    try:
        with logs:
            try:
                sensor = xdp.XdpSensor(snaplen=args.snaplen, page_cnt=args.pages,
                                       wakeup_bytes=args.wakeup_bytes,
                                       coalesce=not args.no_coalesce,
                                       bypass_timeout=args.bypass_timeout,
                                       scan_tcp=pipe.config.scan.enabled,
                                       scan_udp=pipe.config.scan.enabled)
                if args.wakeup_bytes and sensor.wakeup_bytes != args.wakeup_bytes:
                    _err(f"warning: --wakeup-bytes {args.wakeup_bytes}: "
                         + (f"at most a quarter of the ring, {sensor.wakeup_bytes}"
                            if sensor.wakeup_bytes else
                            "needs the direct perf reader (x86-64); the reader is "
                            "woken at every record"))
                counts = sensor.set_services(kernel_tree(tree, rs.sig))
                sensor.set_block(args.block)
                if sig.stop:
                    _err(f"{sig.stop} before attaching: nothing attached")
                    return EXIT_OK
                att = sensor.attach(args.iface, mode=args.mode, direction=direction)
            except xdp.SensorError as e:
                _err(str(e))
                return EXIT_SENSOR
            resetter = None
            if args.reset:
                from .respond import Resetter

                try:
                    resetter = Resetter("stack")
                except OSError as e:
                    _err(f"--reset: no raw socket ({e.strerror or e})")
                    return EXIT_SENSOR
            session = LiveSession(sensor, pipe, logs, block=args.block, show=not args.quiet,
                                  resetter=resetter)
            session.metrics = metrics
            if metrics is not None:
                metrics.update(pipe, sensor, logs)  # counters are read at scrape time
            _err(f"attached to {att.ifname} ({att.mode} XDP"
                 f"{', tc egress' if att.egress else ''}"
                 f"{'' if att.dies_with_process else '; through netlink: if killed, `pakemon-xdp detach` removes it'}"
                 f"): {rs.count} rules, "
                 f"{counts['keys']} service keys; logs in {args.log_dir}; "
                 "SIGINT/SIGTERM stop, SIGHUP reloads the rules and reopens the logs")
            rs = _loop(args, session, sensor, sig, rs)
            if sig.stop != LINK_GONE:  # else said already
                _err(f"{sig.stop}: detaching from {att.ifname}")
            # Detach first, then read what the ring still holds: every frame
            # the kernel pushed is inspected.
            detach_error = None
            try:
                sensor.detach()
            except xdp.SensorError as e:
                detach_error = str(e)
            for _ in range(64):
                recs = sensor.poll_records(0, drain=True)
                if not recs:
                    break
                session.handle(recs)
            session.flush()
            kc = sensor.counters()
            lost = sensor.lost_per_cpu()
            bypass_entries = len(sensor.bypassed_flows())
            block_entries = len(sensor.blocked_flows())
            sensor.close()
            if resetter is not None:
                resetter.close()
            print()
            print(kernel_table(kc, lost, iface=att.ifname, mode=att.mode, egress=att.egress,
                               session=session, bypass_entries=bypass_entries,
                               block_entries=block_entries))
            _summary(pipe, rs, args.log_dir)
            sys.stdout.flush()
            code = EXIT_OK
            if detach_error:
                _err(detach_error)
                code = EXIT_SENSOR
            elif sig.stop == LINK_GONE:
                code = EXIT_SENSOR
        if report_log_losses(logs) and code == EXIT_OK:
            code = EXIT_IO
        return code
    finally:
        if sensor is not None:
            try:
                sensor.close()  # idempotent; detaches if anything went wrong above
            except xdp.SensorError as e:
                _err(str(e))
        sig.restore()


def _loop(args, session: LiveSession, sensor, sig: _Signals, rs):
    """Poll, feed, act, until a stop signal. Returns the rule set in force."""
    next_snapshot = time.monotonic() + SNAPSHOT_EVERY_S
    next_link_check = time.monotonic() + LINK_CHECK_S
    session.snapshot = sensor.counters()
    while not sig.stop:
        recs = sensor.poll_records(POLL_MS)
        if recs:
            t0 = time.perf_counter()
            session.handle(recs)
            if session.metrics is not None:
                session.metrics.observe(time.perf_counter() - t0)
        if sig.reload:
            sig.reload = False
            _reopen_logs(session)  # SIGHUP also reopens the logs (logrotate)
            new = _reload(args, session, sensor, rs)
            if session.metrics is not None:
                session.metrics.record_reload(new is not rs)  # the same set: it failed
            rs = new
        now = time.monotonic()
        if now >= next_snapshot:
            # Nothing printed: the counters are kept for the final table's
            # sake should the maps become unreadable.
            next_snapshot = now + SNAPSHOT_EVERY_S
            session.snapshot = sensor.counters()
            session.logs.flush()
            displaced = sensor.displaced()
            if displaced:
                _err(f"{', '.join(displaced)}: the XDP program there is no longer this "
                     "sensor's (removed or replaced by another tool): nothing left to watch")
                sig.stop = LINK_GONE
        if now >= next_link_check:
            next_link_check = now + LINK_CHECK_S
            gone = sensor.vanished()
            if gone:
                _err(f"{', '.join(gone)} is gone (deleted, or the name is another "
                     "interface's now): nothing left to watch")
                sig.stop = LINK_GONE
    return rs


# ---- detach, status -------------------------------------------------------

def run_detach(args) -> int:
    from .capture import xdp

    try:
        removed = xdp.detach_interface(args.iface, force=args.force)
    except xdp.SensorError as e:
        _err(str(e))
        return EXIT_SENSOR
    if removed:
        for r in removed:
            print(f"{args.iface}: removed {r}")
    else:
        print(f"{args.iface}: nothing attached")
    return EXIT_OK


def run_status(args) -> int:
    from .capture import xdp

    if args.iface:
        names = [args.iface]
    else:
        names = [name for _, name in sorted(socket.if_nameindex())]
    status = EXIT_OK
    for name in names:
        try:
            st = xdp.interface_status(name)
        except xdp.SensorError as e:
            _err(str(e))
            status = EXIT_SENSOR
            continue
        print(st.describe() + ("  (pakemon)" if st.ours else ""))
    return status


# ---- argument parsing ------------------------------------------------------

def _pow2(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if n <= 0 or n & (n - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two: {text!r}")
    return n


def _snaplen(text: str) -> int:
    from .abi import SNAPLEN_MAX

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}")
    if not 1 <= n <= SNAPLEN_MAX:
        raise argparse.ArgumentTypeError(f"must be 1..{SNAPLEN_MAX}: {text!r}")
    return n


def _seconds0(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    if not math.isfinite(v):  # (the kernel takes whole nanoseconds)
        raise argparse.ArgumentTypeError(f"not a finite number of seconds: {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return v


def add_sensor_commands(sub, fmt) -> None:
    """``attach``, ``detach``, ``status`` and ``lab`` on the CLI's subparsers."""
    from .abi import SNAPLEN_DEFAULT
    from .capture.xdp import DEFAULT_BYPASS_TIMEOUT, DEFAULT_PAGE_CNT

    a = sub.add_parser(
        "attach", help="run the IDS live on an interface (XDP sensor, root)",
        description="Attach the XDP sensor to IFACE and run the pipeline on the frames it "
        "pushes (those some rule can match): alerts are printed and appended to alert.log, "
        "dump.log and eve.json. SIGINT/SIGTERM detach and print the kernel and pipeline "
        "counters; SIGHUP reloads the rule file (an invalid file keeps the old rules).",
        epilog=SENSOR_EXIT_CODES, formatter_class=fmt)
    a.add_argument("iface", metavar="IFACE", help="network interface (in this namespace)")
    add_rule_options(a)
    a.add_argument("-q", "--quiet", action="store_true",
                   help="do not print alerts as they happen (the counters still print)")
    a.add_argument("--mode", choices=("auto", "native", "generic"), default="auto",
                   help="XDP mode: auto tries native (driver) then generic (default auto)")
    a.add_argument("--direction", choices=("ingress", "both"), default="ingress",
                   help="ingress: XDP only; both: also the tc egress hook, for traffic this "
                   "host sends (default ingress)")
    a.add_argument("--snaplen", type=_snaplen, default=SNAPLEN_DEFAULT, metavar="N",
                   help=f"frame bytes per record (default {SNAPLEN_DEFAULT}: whole frames)")
    a.add_argument("--pages", type=_pow2, default=DEFAULT_PAGE_CNT, metavar="N",
                   help=f"perf ring pages per CPU, a power of two (default {DEFAULT_PAGE_CNT})")
    a.add_argument("--wakeup-bytes", type=_size, default=0, metavar="SIZE",
                   help="wake the reader when a CPU's ring holds this much (e.g. 64k) "
                   "instead of at every record: far less kernel work per frame on the "
                   "host (receive softirq at 60k frames/s: 13.8%% -> 0.0%% of a CPU), "
                   "frames wait up to 20 ms; a sender on the same machine is then no "
                   "longer slowed to the reader's pace (default 0: every record)")
    a.add_argument("--no-coalesce", action="store_true",
                   help="push every data segment of the servers' side on its own; by "
                   "default the kernel merges header-only ones in a row into one "
                   "record (pushed before the flow's next packet): about 40%% fewer "
                   "records on web traffic")
    a.add_argument("--bypass-timeout", type=_seconds0, default=DEFAULT_BYPASS_TIMEOUT,
                   metavar="SECONDS", help="a bypassed flow idle this long is inspected "
                   f"again; 0 never (default {DEFAULT_BYPASS_TIMEOUT:g})")
    a.add_argument("--block", action="store_true",
                   help="drop the later packets of every flow that alerted (XDP_DROP); "
                   "of a Suricata rule's alert only when the rule's action is drop or reject; "
                   "the alert's EVE action is then \"blocked\"")
    a.add_argument("--reset", action="store_true",
                   help="reset the TCP connection of every TCP alert (of a Suricata rule: "
                   "when its action is reject): a RST to each end, "
                   "through this host's stack (run the sensor on the protected host); "
                   "the alert's EVE action is then \"blocked\". Without it nothing is sent")
    add_engine_options(a)
    add_output_options(a)
    a.set_defaults(func=run_attach)

    d = sub.add_parser("detach", help="remove pakemon's XDP/tc programs from an interface",
                       description="Remove pakemon's XDP program and tc egress program "
                       "from IFACE: a hung sensor's (its bpf links are detached), or what a "
                       "killed one left on a kernel without bpf links (a killed sensor's links "
                       "go with it).", epilog=SENSOR_EXIT_CODES,
                       formatter_class=fmt)
    d.add_argument("iface", metavar="IFACE")
    d.add_argument("--force", action="store_true",
                   help="also remove an XDP program that is not pakemon's")
    d.set_defaults(func=run_detach)

    s = sub.add_parser("status", help="show XDP programs attached to interfaces",
                       description="For IFACE, or every interface of this namespace: the "
                       "XDP program (mode, id, name) and tc egress filters attached.",
                       epilog=SENSOR_EXIT_CODES, formatter_class=fmt)
    s.add_argument("iface", nargs="?", metavar="IFACE")
    s.set_defaults(func=run_status)

    from .lab.live import add_lab_command

    add_lab_command(sub, fmt, SENSOR_EXIT_CODES)
