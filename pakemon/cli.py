"""Command line: argument parsing and wiring only.

``read`` puts a capture file in front of the pipeline and the logs behind
it; ``rules`` checks and shows a rule base. The kernel sensor's ``attach``
will wire the perf buffer to the same pipeline.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from . import __version__

EXIT_OK = 0
EXIT_RULES = 1  # the rule base has errors
EXIT_USAGE = 2  # bad flags or arguments (argparse's own code)
EXIT_CAPTURE = 3  # a capture could not be read to its end
EXIT_IO = 4  # the log directory could not be written
EXIT_SENSOR = 5  # the kernel sensor could not start (interface, root, BPF, headers)

EXIT_CODES = f"""exit codes:
  {EXIT_OK}  success (whether or not anything alerted)
  {EXIT_RULES}  the rule file has errors (each printed as FILE:LINE:COLUMN: message)
  {EXIT_USAGE}  bad command line
  {EXIT_CAPTURE}  a capture file is missing, not a capture, or cut short; every frame
     before the problem was processed and logged
  {EXIT_IO}  the log directory or a log file could not be written
  {EXIT_SENSOR}  attach/detach/status: no such interface, not root, no BPF support,
     kernel headers missing
"""

# Captures smaller than this finish before a progress bar would be useful.
PROGRESS_MIN_BYTES = 4 * 1024 * 1024


def default_rules() -> Path:
    env = os.environ.get("PAKEMON_RULES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "rules" / "pakemon.rules"


def _err(msg: str) -> None:
    print(f"pakemon-xdp: {msg}", file=sys.stderr)


def rules_format(path) -> str:
    """"native" or "suricata", by the file's content (a directory: Suricata)."""
    from .detect.suricata_parser import detect_format

    p = Path(path)
    if p.is_dir():
        return "suricata"
    try:
        with open(p, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return "native"  # the loader reports why it cannot read it
    return detect_format(head)


def check_suricata(path, reputation=None) -> int:
    """`rules check` for Snort/Suricata files: what loads, what is skipped."""
    import logging

    from .detect.suricata_parser import load_suricata_rules

    # the loader logs each skip too; here the lines go to stderr once, below
    logging.getLogger("pakemon.detect.suricata").setLevel(logging.ERROR)
    try:
        rs = load_suricata_rules(path, reputation=reputation)
    except OSError as e:
        _err(f"cannot read rules {path}: {e.strerror or e}")
        return EXIT_RULES
    for s in rs.skipped:
        print(s.message, file=sys.stderr)
    for e in rs.errors:
        print(e, file=sys.stderr)
    print(f"{path}: {rs.summary()}")
    if rs.rules:
        from .detect.sigengine import SigRuleSet

        note = inert_note(SigRuleSet(rs.rules))
        if note:
            print(f"{path}: {note}")
    return EXIT_RULES if rs.errors else EXIT_OK


def inert_note(sig) -> str:
    """The loaded rules that can never alert here yet, in words ("" if none)."""
    inert = sig.inert()
    if not inert:
        return ""
    return (f"{sum(inert.values())} loaded rule(s) are not inspected yet (no parser for "
            "them): " + ", ".join(f"{k} {n}" for k, n in inert.most_common()))


def load_ruleset(path, skip_bad: bool, native_only: bool = False):
    """Native rules from ``path``, or None after printing why not (exit 1)."""
    from .detect.rule_parser import load_rules
    from .detect.rules import RuleFileError

    if not native_only and rules_format(path) == "suricata":
        _err(f"{path}: Snort/Suricata rules: `pakemon-xdp rules check` validates them; "
             "`rules tree` shows native rule files only")
        return None
    try:
        rs = load_rules(path, skip_bad=skip_bad)
    except RuleFileError as e:
        _errors(e.errors, f"{path}: {len(e.errors)} error(s); no rules loaded "
                "(--skip-bad-rules loads the rest)")
        return None
    except OSError as e:
        _err(f"cannot read rules {path}: {e.strerror or e}")
        return None
    for err in rs.skipped:
        print(f"{err} (rule skipped)", file=sys.stderr)
    return rs


class LoadedRules:
    """What ``load_rules_args`` loaded: native rules, the compiled Suricata
    set (``sig``, None without Suricata files) and every skipped rule."""

    def __init__(self):
        self.rules = []  # native Rule objects
        self.sig_rules = []  # SuricataRule objects
        self.sig = None
        self.skipped = []  # native RuleErrors and Suricata SkippedRules/RuleErrors

    @property
    def count(self) -> int:
        return len(self.rules) + len(self.sig_rules)


def _rule_paths(args) -> list:
    paths = getattr(args, "rules", None)
    if paths is None:
        return [default_rules()]
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return list(paths) or [default_rules()]


def _classifications(path):
    """classification.config beside a Suricata rule file (or in its directory)."""
    from .detect.suricata_parser import load_classification_config

    p = Path(path)
    for cand in ((p if p.is_dir() else p.parent) / "classification.config",):
        if cand.is_file():
            try:
                return load_classification_config(cand)
            except OSError:
                return {}
    return {}


def _errors(lines, summary: str) -> None:
    """A file's errors, one line each, then the summary line of ``_err``."""
    for line in lines:
        print(line, file=sys.stderr)
    _err(summary)


def load_reputation(args):
    """The IpReputation of --iprep-categories and --iprep (None without
    them); False after saying why a file is bad."""
    from .detect.iprep import IpRepError, IpReputation

    cats = getattr(args, "iprep_categories", None)
    files = getattr(args, "iprep", None) or []
    if cats is None:
        if files:
            _err("--iprep needs --iprep-categories (the files score addresses by category id)")
            return False
        return None
    rep = IpReputation()
    for path, load in [(cats, rep.load_categories)] + [(f, rep.load) for f in files]:
        try:
            load(path)
        except OSError as e:
            _err(f"cannot read {path}: {e.strerror or e}")
            return False
        except IpRepError as e:
            _errors(e.errors, f"{path}: {len(e.errors)} error(s); no rules loaded")
            return False
    return rep


def load_suricata_ruleset(path, skip_bad: bool, vars_path=None, datasets=None, reputation=None):
    """A SuricataRuleSet, or None after printing its errors (exit 1);
    ``datasets``: the named sets shared by every rule file of the load."""
    from .detect.rules import RuleFileError
    from .detect.suricata_parser import load_suricata_rules

    # each skipped rule is one warning line of the parser's logger, plus a summary
    try:
        srs = load_suricata_rules(path, vars=vars_path, datasets=datasets,
                                  reputation=reputation)
    except RuleFileError as e:
        _errors(e.errors, f"{vars_path}: {len(e.errors)} error(s) in the vars file; "
                "no rules loaded")
        return None
    except OSError as e:
        _err(f"cannot read rules {path}: {e.strerror or e}")
        return None
    except ValueError as e:
        _err(f"{vars_path}: {e}")
        return None
    if srs.errors and not skip_bad:
        _errors(srs.errors, f"{path}: {len(srs.errors)} error(s); no rules loaded "
                "(--skip-bad-rules loads the rest)")
        return None
    for err in srs.errors:
        print(f"{err} (rule skipped)", file=sys.stderr)
    return srs


def load_rules_args(args):
    """Every --rules file (native and Suricata mixed), or None after saying why not."""
    from .detect.sigengine import SigRuleSet

    fmt_flag = getattr(args, "rules_format", "auto") or "auto"
    vars_path = getattr(args, "vars", None)
    if vars_path is not None:
        # read now, whatever the rules: a broken vars file is an error even
        # where only native rules (which take no variables) are loaded
        from .detect.rules import RuleFileError
        from .detect.vars import load_vars
        try:
            load_vars(vars_path)
        except OSError as e:
            _err(f"cannot read vars {vars_path}: {e.strerror or e}")
            return None
        except RuleFileError as e:
            _errors(e.errors, f"{vars_path}: {len(e.errors)} error(s) in the vars file; "
                    "no rules loaded")
            return None
    out = LoadedRules()
    classes = {}
    datasets: dict = {}  # (a set named in two rule files is one set)
    reputation = load_reputation(args)
    if reputation is False:
        return None
    for path in _rule_paths(args):
        if Path(path).is_dir() and not any(Path(path).glob("*.rules")):
            _err(f"{path}: no *.rules file in this directory")
            return None
        fmt = fmt_flag if fmt_flag != "auto" else rules_format(path)
        if fmt == "suricata":
            srs = load_suricata_ruleset(path, args.skip_bad_rules, vars_path, datasets,
                                        reputation)
            if srs is None:
                return None
            out.sig_rules += srs.rules
            out.skipped += list(srs.skipped) + list(srs.errors)
            classes.update(_classifications(path))
            continue
        if Path(path).is_dir():
            _err(f"{path}: a directory of native rules is not supported; "
                 "give the file, or --rules-format suricata")
            return None
        rs = load_ruleset(path, args.skip_bad_rules, native_only=True)
        if rs is None:
            return None
        out.rules += rs.rules
        out.skipped += rs.skipped
    if out.sig_rules:
        # a gid:sid loaded twice (two files) alerts once: the first stays
        seen, uniq = set(), []
        for r in out.sig_rules:
            if (r.gid, r.sid) not in seen:
                seen.add((r.gid, r.sid))
                uniq.append(r)
        out.sig_rules = uniq
        out.sig = SigRuleSet(uniq, classes)
        note = inert_note(out.sig)
        if note:
            print(f"pakemon-xdp: {note}", file=sys.stderr)
    if not out.rules and not out.sig_rules:
        names = ", ".join(str(p) for p in _rule_paths(args))
        _err(f"warning: no rules loaded from {names}: nothing can alert (scan detection "
             "and anomaly notices still run)")
    return out


def build_pipeline(args):
    """(rules, pipeline) from the rule and engine flags of read and attach,
    or an exit code after saying why not."""
    from .detect.ruletree import RuleTree
    from .pipeline import Pipeline

    import gc

    # Loading makes hundreds of thousands of long-lived objects (18,000 ET
    # rules): collecting during the load is wasted work, and afterwards
    # gc.freeze() keeps every later collection from walking them again.
    gc.disable()
    try:
        rs = load_rules_args(args)
    finally:
        gc.enable()
    if rs is None:
        return EXIT_RULES
    gc.collect()
    gc.freeze()
    config = build_config(args)
    if config is None:
        return EXIT_USAGE
    return rs, Pipeline(RuleTree(rs.rules), config, sig=rs.sig)


def cmd_read(args) -> int:
    import time

    from .capture import CaptureError, open_capture

    # load and processing are timed apart: rule-load time and throughput
    # are separate targets (CPU time too: wall time on a shared machine
    # moves with whatever else runs)
    clocks = [(time.perf_counter(), time.process_time())]
    built = build_pipeline(args)
    if isinstance(built, int):
        return built
    rs, pipe = built
    from .capture.bpf import BpfError, BpfFilter

    bpf = None
    if args.bpf is not None:
        try:
            bpf = BpfFilter(args.bpf)
        except BpfError as e:
            _err(str(e))
            return EXIT_USAGE
    clocks.append((time.perf_counter(), time.process_time()))
    metrics = serve_metrics(args, pipe)
    if isinstance(metrics, int):
        return metrics
    logs = open_logs(args)
    if isinstance(logs, int):
        return logs
    if metrics is not None:
        metrics.update(pipe, logs=logs)
    status = EXIT_OK
    show = not args.quiet
    errors = [0]  # frames the pipeline raised on (_run)
    stop = []  # the signal that stopped the read, if one did
    with logs:
        left = []
        for path in args.pcap:
            if not os.path.isdir(path):
                left.append(path)
                continue
            found = _captures_in(path)
            if not found:
                status = EXIT_CAPTURE
            left += found
        with _StopOnSignal(stop) as stopper:
            while left and not stop:
                path = left.pop(0)
                stopper.reader, stopper.path, stopper.cut = None, path, True
                try:
                    reader = open_capture(path)
                except CaptureError as e:
                    _err(str(e))
                    status = EXIT_CAPTURE
                    continue
                except OSError as e:
                    _err(f"cannot read {path}: {e.strerror or e}")
                    status = EXIT_CAPTURE
                    continue
                stopper.reader, stopper.path = reader, reader.path
                try:
                    with reader:
                        stopper.cut = not _run(reader, pipe, logs, show, args.progress, bpf,
                                               errors, stop)
                except CaptureError as e:
                    _err(str(e))
                    status = EXIT_CAPTURE
                except BpfError as e:  # the filter does not fit this file's link type
                    _err(f"{path}: {e}")
                    status = EXIT_CAPTURE
        if stop:
            unread = [f"the rest of {stopper.path}"] if stopper.cut else []
            if left:
                unread.append(f"{len(left)} more capture(s)")
            what = ""
            if unread:
                what = f": {' and '.join(unread)} {'were' if left else 'was'} not read"
            _err(f"stopped by {stop[0]} after {pipe.stats.frames:,} frames{what}; what was "
                 "read is flushed and counted")
        events = pipe.flush()
        if events:
            logs.write_many(events)
            if show:
                _show(events)
        if save_datasets(pipe) and status == EXIT_OK:
            status = EXIT_IO
        report_sinks(logs)
    if report_log_losses(logs) and status == EXIT_OK:
        status = EXIT_IO
    clocks.append((time.perf_counter(), time.process_time()))
    _summary(pipe, rs, args.log_dir, clocks, errors[0])
    if bpf is not None:
        print(f"frames skipped by --bpf {args.bpf!r}: {bpf.filtered}")
        bpf.close()
    return status


def build_config(args):
    """The stages' settings from the flags, or None after saying why not."""
    from .config import (DEFRAG_FOR_HOST, STREAM_FOR_HOST, Config,
                         DefragConfig, ScanConfig, StreamConfig)
    from .hostpolicy import HostPolicy, HostPolicyError

    policy = args.policy
    defrag_policy = DEFRAG_FOR_HOST.get(policy, "linux-current")
    stream_policy = STREAM_FOR_HOST.get(policy) or "linux-current"
    if args.defrag_policy:
        defrag_policy = args.defrag_policy
    host_policy = None
    if args.host_policy:
        try:
            host_policy = HostPolicy.load(args.host_policy)
        except HostPolicyError as e:
            _errors(e.errors, f"{args.host_policy}: {len(e.errors)} error(s)")
            return None
        except OSError as e:
            _err(f"cannot read host policy {args.host_policy}: {e.strerror or e}")
            return None
    from .detect.http_normalize import HttpConfig

    http = HttpConfig(personality=getattr(args, "http_personality", "generic"),
                      double_decode=getattr(args, "http_double_decode", False))
    # --stream-depth sets both directions; not given: all a client sends,
    # and StreamConfig's depth for a server's replies
    depths = ({"client_depth": 0} if args.stream_depth is None else
              {"depth": args.stream_depth, "client_depth": args.stream_depth})
    return Config(
        http=http,
        defrag=DefragConfig(policy=defrag_policy, timeout=args.defrag_timeout,
                            memcap=args.defrag_memcap),
        stream=StreamConfig(policy=stream_policy, midstream=args.midstream == "on",
                            async_oneside=args.async_oneside == "on", checksum=args.checksum,
                            memcap=args.stream_memcap, max_sessions=args.max_sessions,
                            **depths),
        scan=ScanConfig(enabled=args.scan == "on"),
        host_policy=host_policy,
        local_macs=frozenset(getattr(args, "host_mac", ()) or ()),
    )


def _path(text: str) -> Path:
    """A file or directory name; an empty one (an unset shell variable) is
    refused rather than taken for the current directory, as Path("") is."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    return Path(text)


def _mac(text: str) -> bytes:
    """A MAC address, aa:bb:cc:dd:ee:ff (or with dashes), as 6 bytes."""
    parts = text.strip().replace("-", ":").split(":")
    try:
        raw = bytes(int(p, 16) for p in parts if len(p) <= 2)
    except ValueError:
        raw = b""
    if len(parts) != 6 or len(raw) != 6:
        raise argparse.ArgumentTypeError(f"not a MAC address: {text!r}")
    return raw


def save_datasets(pipe) -> int:
    """Write the datasets the rules declared with ``save`` or ``state``, as
    Suricata does when it exits; how many could not be (each reported)."""
    failed = 0
    for ds in pipe.sig.datasets if pipe.sig is not None else ():
        if ds.save is None or (not ds.dirty and os.path.exists(ds.save)):
            continue
        try:
            ds.write()
        except OSError as e:
            failed += 1
            _err(f"cannot save dataset {ds.name} to {ds.save}: {e.strerror or e}")
    return failed


def _size(text: str) -> int:
    """A byte count: 65536, 64k, 32m, 1g."""
    t = text.strip().lower()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
    if mult != 1:
        t = t[:-1]
    try:
        value = int(t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 65536, 64k, 32m)")
    if value < 0:
        raise argparse.ArgumentTypeError(f"size must not be negative: {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    if not math.isfinite(value):  # (nan compares false with anything: no timeout at all)
        raise argparse.ArgumentTypeError(f"not a finite number of seconds: {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_rule_options(p) -> None:
    """--rules, --log-dir, --skip-bad-rules: shared by read and attach."""
    p.add_argument("--rules", type=_path, action="append", metavar="FILE",
                   help="rule file, or a directory of Snort/Suricata *.rules; repeat to "
                   "load several, native and Suricata mixed (default: the bundled "
                   "rules/pakemon.rules)")
    p.add_argument("--rules-format", choices=("auto", "native", "suricata"), default="auto",
                   help="format of the --rules files (default auto: by content)")
    p.add_argument("--vars", type=_path, metavar="FILE",
                   help="address and port variables for Suricata rules ($HOME_NET, "
                   "$HTTP_PORTS ...; see pakemon/detect/vars.py)")
    p.add_argument("--http-personality", choices=("generic", "apache", "iis"),
                   default="generic", help="how request targets are normalized for "
                   "http.uri and native HTTP matching (default generic)")
    p.add_argument("--http-double-decode", action="store_true",
                   help="percent-decode request targets twice, as IIS did")
    p.add_argument("--log-dir", type=_path, default=Path("pakemon-logs"), metavar="DIR",
                   help="where alert.log, dump.log and eve.json are appended "
                   "(default ./pakemon-logs)")
    p.add_argument("--skip-bad-rules", action="store_true",
                   help="load the good rules of a file with errors, reporting each bad one")
    p.add_argument("--iprep-categories", type=_path, metavar="FILE",
                   help="IP reputation categories for iprep rules (id,short name,"
                   "description per line), as Suricata's reputation-categories-file")
    p.add_argument("--iprep", type=_path, action="append", metavar="FILE",
                   help="IP reputation file (ip[/prefix],category id,score per line); "
                   "repeat for several, as Suricata's reputation-files")


def add_output_options(p) -> None:
    """Where events go besides the log directory, shared by read and attach."""
    g = p.add_argument_group("outputs")
    g.add_argument("--syslog", metavar="TARGET",
                   help="also send every alert and notice to syslog: unix:/dev/log, "
                   "udp:HOST:PORT or tcp:HOST:PORT ([::1] for IPv6)")
    g.add_argument("--syslog-rfc", choices=("5424", "3164"), default="5424",
                   help="syslog message format (default 5424)")
    g.add_argument("--log-max-size", type=_size, default=0, metavar="SIZE",
                   help="rotate alert.log, dump.log and eve.json at this size: FILE -> "
                   "FILE.1 ... (e.g. 100m; default 0: never)")
    g.add_argument("--log-keep", type=_count, default=5, metavar="N",
                   help="rotated files kept per log, the oldest dropped (default 5)")
    g.add_argument("--pcap-log", action="store_true",
                   help="write the packets of alerted flows to pakemon.pcap in the log "
                   "directory: the alerting packet and every later frame of its flow")
    g.add_argument("--pcap-log-size", type=_size, default=64 << 20, metavar="SIZE",
                   help="rotate pakemon.pcap at this size, keeping --log-keep old ones "
                   "(default 64m; 0: never)")
    from .output.metrics import add_metrics_option

    add_metrics_option(g)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def open_pcaplog(args):
    """The PcapLog of --pcap-log (None without it)."""
    if not getattr(args, "pcap_log", False):
        return None
    from .output.pcaplog import PcapLog

    return PcapLog(args.log_dir, args.pcap_log_size, getattr(args, "log_keep", 5))


def open_logs(args):
    """The LogSet of --log-dir with the --syslog sink, or an exit code."""
    from .output import LogSet

    sinks = []
    if getattr(args, "syslog", None):
        from .output.syslog import SyslogSink

        try:
            sinks.append(SyslogSink(args.syslog, rfc=args.syslog_rfc))
        except ValueError as e:
            _err(str(e))
            return EXIT_USAGE
    try:
        logs = LogSet(args.log_dir, sinks=sinks, max_bytes=getattr(args, "log_max_size", 0),
                      keep=getattr(args, "log_keep", 5), report=_err)
        logs.pcaplog = open_pcaplog(args)
        return logs
    except OSError as e:
        for sink in sinks:
            sink.close()
        _err(f"cannot open log directory {args.log_dir}: {e.strerror or e}")
        return EXIT_IO


def serve_metrics(args, pipe):
    """The Prometheus exporter of --metrics (None without it), or an exit code."""
    if getattr(args, "metrics", None) is None:
        return None
    from .output.metrics import MetricsExporter

    try:
        return MetricsExporter.from_args(args, pipe)
    except OSError as e:
        _err(f"cannot serve metrics on {args.metrics}: {e.strerror or e}")
        return EXIT_IO


def report_log_losses(logs) -> bool:
    """After the logs are closed: say how many entries (and filestore
    files) the file system refused (disk full, I/O error); True if any."""
    fs = getattr(logs, "filestore", None)
    if fs is not None and fs.lost:
        _err(f"files not stored: {fs.lost} of {fs.lost + fs.stored} (the file system "
             f"refused them; {fs.base})")
    if not logs.entries_lost:
        return fs is not None and fs.lost > 0
    _err(f"log entries not written: {logs.entries_lost} (the file system refused them; "
         "everything before the first refusal is in the logs)")
    return True


def report_sinks(logs) -> None:
    """Syslog losses are said, not silent."""
    for s in logs.sinks:
        if s.dropped or s.errors:
            _err(f"syslog {s.target}: {s.sent} sent, {s.dropped} dropped, {s.errors} errors "
                 f"({s.last_error})")


def add_engine_options(p) -> None:
    """Flags of the defrag and stream stages, shared by read and attach."""
    from .config import DEFRAG_POLICIES, HOST_POLICY_NAMES

    g = p.add_argument_group("reassembly (target-based; see docs/reassembly.md)")
    g.add_argument("--policy", choices=HOST_POLICY_NAMES, default="linux-current",
                   metavar="NAME", help="target policy for defrag and stream, Suricata's "
                   "names plus linux-current (default): " + ", ".join(HOST_POLICY_NAMES))
    g.add_argument("--defrag-policy", choices=DEFRAG_POLICIES, metavar="NAME",
                   help="override the defrag policy only: " + ", ".join(DEFRAG_POLICIES))
    g.add_argument("--host-policy", type=_path, metavar="FILE",
                   help="'CIDR POLICY' per line: each destination reassembled as its own "
                   "stack would (most specific block wins)")
    g.add_argument("--midstream", choices=("on", "off"), default="on",
                   help="pick up TCP connections already open when capture starts (default on)")
    g.add_argument("--async-oneside", choices=("on", "off"), default="off",
                   help="accept TCP flows where only one direction is seen (default off)")
    g.add_argument("--host-mac", type=_mac, action="append", default=[], metavar="MAC",
                   help="the protected host's MAC address (repeatable): Ethernet frames to "
                   "another host's unicast address, which its stack discards, are not "
                   "inspected (default: none given, every frame is; a replayed capture "
                   "keeps its own MACs)")
    g.add_argument("--checksum", choices=("auto", "on", "off"), default="auto",
                   help="ignore packets with bad checksums as the target would; auto stops "
                   "checking when the capture shows NIC checksum offload (default auto)")
    g.add_argument("--stream-depth", type=_size, default=None, metavar="BYTES",
                   help="bytes inspected per TCP direction, 0 for no limit (default: all "
                   "that a client sends, which is what the protected server receives, so "
                   "padding cannot push an attack out of sight; 1m of a server's replies)")
    g.add_argument("--stream-memcap", type=_size, default=64 << 20, metavar="BYTES",
                   help="TCP reassembly memory cap (default 64m)")
    g.add_argument("--max-sessions", type=_count, default=0, metavar="N",
                   help="TCP sessions tracked at once (default 0: as many as the stream "
                   "memcap allows at ~4 KB each; half-open ones are evicted first)")
    g.add_argument("--defrag-memcap", type=_size, default=32 << 20, metavar="BYTES",
                   help="IP fragment memory cap (default 32m)")
    g.add_argument("--defrag-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                   help="incomplete datagram timeout (default 30, Linux's ipfrag_time)")
    g.add_argument("--scan", choices=("on", "off"), default="on",
                   help="report SYN/FIN/NULL/XMAS/UDP scans (default on)")


# Frames the pipeline raised on (a bug), skipped: the rest of the capture is
# still read, as the live sensor goes on after a bad record. PAKEMON_STRICT=1
# (the test suite sets it) lets the exception through instead.
MAX_ERRORS_SHOWN = 10


def _check_linktype(path, linktype: int) -> None:
    """Say that a link type no decoder exists for cannot be decoded (its
    frames are counted malformed)."""
    from .decode import SUPPORTED_LINKTYPES
    from .decode import packet

    if linktype in SUPPORTED_LINKTYPES:
        return
    names = sorted(f"{k[len('LINKTYPE_'):] if k.startswith('LINKTYPE_') else 'RAW'} ({v})"
                   for k, v in vars(packet).items()
                   if k.startswith(("LINKTYPE_", "DLT_")) and v in SUPPORTED_LINKTYPES)
    _err(f"warning: {path}: link type {linktype} is not supported, its frames are counted "
         f"malformed (supported: {', '.join(names)})")


def _captures_in(directory) -> list:
    """The captures of a directory given to `read`, in order of modification
    time (as Suricata's pcap-file mode takes a directory: a capture rotated
    by tcpdump -C or -G is read in the order it was written), by name when
    equal. Files that are not captures (by their first four bytes) are left
    out with one line; subdirectories are not entered. Empty: an error line."""
    from .capture.pcapfile import is_capture

    found, other = [], 0
    try:
        entries = list(os.scandir(directory))
    except OSError as e:
        _err(f"cannot read {directory}: {e.strerror or e}")
        return []
    for e in entries:
        try:
            if not e.is_file() or e.name.startswith("."):
                continue
            if is_capture(e.path):
                found.append((e.stat().st_mtime_ns, e.name, e.path))
            else:
                other += 1
        except OSError:
            other += 1
    if other:
        _err(f"{directory}: {other} file(s) that are not captures left out")
    if not found:
        _err(f"{directory}: no pcap or pcapng file in it")
    return [p for _, _, p in sorted(found)]


class _Stopped(Exception):
    """Raised by _StopOnSignal's handler where stopping loses nothing."""


class _StopOnSignal:
    """SIGINT and SIGTERM end `read` as the end of its captures would: the
    pipeline flushed, the summary printed, exit 0 (as Suricata and Snort do
    with a capture file, and attach does).

    The handler only notes the signal (``stop``), which _run looks at
    between frames, so no frame is left half inspected. It raises
    _Stopped where nothing is in progress: while a capture is being
    opened, and while a stream (``read -``) waits for input, which may be
    for ever. A second signal acts as it would have without this (SIGINT:
    "interrupted", exit 130), for a read that will not stop.
    """

    def __init__(self, stop: list):
        self.stop = stop
        self.reader = None  # the capture being read; None while opening one
        self.path = None  # the capture being opened or read
        self.cut = False  # whether that capture was left before its end
        self._old = {}

    def __enter__(self):
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, etype, exc, tb):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        return etype is _Stopped

    def _handler(self, signum, _frame):
        import signal

        if not self.stop:
            self.stop.append(signal.Signals(signum).name)
            signal.signal(signum, self._old[signum])  # the next one as before
        reader = self.reader
        if reader is None or reader.waiting:
            raise _Stopped


def _run(reader, pipe, logs, show: bool, progress: str, bpf=None, errors=None,
         stop=()) -> bool:
    """Feed one capture's frames; ``errors[0]`` counts the frames skipped;
    a true ``stop`` (a signal came) ends it between two frames. Whether the
    capture was read to its end."""
    from .output.eve import stamp_alerts

    errors = errors if errors is not None else [0]
    feed = pipe.feed
    stats = pipe.stats
    match = bpf.match if bpf is not None else None
    strict = os.environ.get("PAKEMON_STRICT") == "1"
    frame_no = 0
    # a capture file is flushed at its end (or by time and size): a
    # stream's alerts must show as its frames come, each batch flushed
    lazy = bool(reader.size)
    write_many = logs.write_many
    pcap = getattr(logs, "pcaplog", None)  # --pcap-log
    bar = None
    if progress == "always" or (progress == "auto" and sys.stderr.isatty()
                                and reader.size >= PROGRESS_MIN_BYTES):
        from tqdm import tqdm

        # a stream's size is not known: bytes read so far, without a total
        bar = tqdm(total=reader.size or None, unit="B", unit_scale=True,
                   desc=os.path.basename(str(reader.path)), file=sys.stderr)
    said = set()  # link types checked in this capture
    try:
        for ts, linktype, frame in reader:
            if stop:
                break
            frame_no += 1
            if frame_no & 0x3FFF == 0:
                if bar is not None:
                    bar.update(reader.offset - bar.n)
                if lazy:  # (a long read's few alerts show within about this many frames)
                    logs.flush()
            if linktype not in said:  # once per link type and capture
                said.add(linktype)
                _check_linktype(reader.path, linktype)
            if match is not None and not match(linktype, frame):
                continue
            try:
                events = feed(ts, frame, linktype)
            except Exception as e:
                if strict:
                    raise
                errors[0] += 1
                if errors[0] <= MAX_ERRORS_SHOWN:
                    _err(f"internal error on frame {frame_no} of {reader.path} "
                         f"({type(e).__name__}: {e}); frame skipped")
                continue
            if pcap is not None:
                pcap.feed(ts, frame, linktype, events)
            if events:
                # (pcap_cnt: the frame's place in what was read, after
                # --bpf, as Suricata counts)
                stamp_alerts(events, frame, linktype, stats.frames)
                write_many(events, lazy)
                if show:
                    _show(events)
        else:
            return True
        return False
    finally:
        if bar is not None:
            bar.update(reader.offset - bar.n)
            bar.close()
        logs.flush()


def _show(events) -> None:
    from .events import Alert

    for ev in events:
        if isinstance(ev, Alert):
            sp = f"({ev.src_port})" if ev.src_port is not None else ""
            dp = f"({ev.dst_port})" if ev.dst_port is not None else ""
            print(f"ALERT {ev.rule.signature}  {ev.proto} {ev.src_ip}{sp}->{ev.dst_ip}{dp}")
        else:
            print(f"NOTICE {ev.message}")


def _summary(pipe, rs, log_dir, clocks=None, internal_errors: int = 0) -> None:
    st = pipe.stats
    out = sys.stdout
    print("", file=out)
    print(st.table(), file=out)
    loaded = rs.count if hasattr(rs, "count") else len(rs.rules)
    print(f"\nrules loaded: {loaded}  skipped: {len(rs.skipped)}", file=out)
    if clocks is not None and len(clocks) == 3:
        (w0, c0), (w1, c1), (w2, c2) = clocks
        cpu = c2 - c1
        rate = f", {st.frames / cpu:,.0f} frames per CPU second" if cpu > 0 else ""
        print(f"rules loaded in {w1 - w0:.2f} s (CPU {c1 - c0:.2f} s)", file=out)
        print(f"processed {st.frames} frames in {w2 - w1:.2f} s (CPU {cpu:.2f} s{rate})",
              file=out)
    print(f"frames inspected: {st.inspected}  malformed: {st.malformed}  "
          f"bad IPv4 checksums: {st.bad_ip_checksum}  directions bypassed: {st.bypassed}"
          + (f"  not for this host: {st.not_for_host}" if st.not_for_host else ""),
          file=out)
    losses = {k: v for k, v in pipe.counters().items() if v}
    if losses:
        print("\ncounters:", file=out)
        for k, v in sorted(losses.items()):
            print(f"{v:>8}  {k}", file=out)
    if st.alerts:
        print("\nalerts by rule:", file=out)
        for sig, n in sorted(st.alerts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{n:>8}  {sig}", file=out)
    else:
        print("\nno alerts", file=out)
    if st.notices:
        print("\nnotices by kind:", file=out)
        for kind, n in sorted(st.notices.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"{n:>8}  {kind}", file=out)
    if internal_errors:
        print(f"\ninternal errors: {internal_errors} frames skipped (a bug: please report "
              "it with the capture)", file=out)
    peak = peak_rss_mb()
    if peak is not None:
        print(f"\npeak RSS: {peak:.1f} MB", file=out)
    print(f"\nlogs: {log_dir}/alert.log dump.log eve.json", file=out)


def peak_rss_mb():
    """This process's peak resident memory (VmHWM), or None off Linux.

    VmHWM belongs to the address space, which exec replaces, so unlike
    ru_maxrss it does not include the parent's size inherited at fork.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cmd_rules_check(args) -> int:
    if rules_format(args.file) == "suricata":
        reputation = load_reputation(args)
        if reputation is False:
            return EXIT_RULES
        return check_suricata(args.file, reputation)
    rs = load_ruleset(args.file, args.skip_bad_rules)
    if rs is None:
        return EXIT_RULES
    from .detect.ruletree import RuleTree

    tree = RuleTree(rs.rules)
    nodes = sum(1 for _ in tree)
    print(f"{args.file}: {len(rs.rules)} rules in {nodes} service nodes, OK"
          + (f" ({len(rs.skipped)} skipped)" if rs.skipped else ""))
    return EXIT_RULES if rs.skipped else EXIT_OK


def cmd_rules_tree(args) -> int:
    rs = load_ruleset(args.file, args.skip_bad_rules)
    if rs is None:
        return EXIT_RULES
    from .detect.ruletree import PROTOS, RuleTree

    tree = RuleTree(rs.rules)
    for proto in PROTOS:
        nodes = tree.nodes[proto]
        if not nodes:
            continue
        print(proto.upper())
        for node in nodes:
            print(f"  ({node.label})  {len(node.rules)} rule(s)")
            for cn in node.contents.values():
                names = ", ".join(node.rules[r].name for r, _ in cn.targets)
                print(f"    {cn.pattern.text}  <- {names}")
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        _err(message)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = _Parser(prog="pakemon-xdp", description="Rule-based network intrusion "
                "detection (Pakemon revived): an XDP sensor on a live interface "
                "(attach) or capture files (read).", epilog=EXIT_CODES, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"pakemon-xdp {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("read", help="analyse capture files (pcap, pcapng)",
                       description="Run capture files through decode, stream and "
                       "detect; write alert.log, dump.log and eve.json; print the "
                       "frame table and alerts by rule.", epilog=EXIT_CODES,
                       formatter_class=fmt)
    r.add_argument("pcap", nargs="+", metavar="PCAP",
                   help="pcap or pcapng file; a directory (its captures, oldest first); "
                        "- (or a pipe, a FIFO) is read as it comes, e.g. "
                        "tcpdump -w - | pakemon-xdp read -")
    add_rule_options(r)
    r.add_argument("-q", "--quiet", action="store_true",
                   help="do not print alerts as they happen (the summary still prints)")
    r.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="progress bar: auto shows it on a terminal for captures over 4 MB")
    r.add_argument("--bpf", metavar="FILTER",
                   help="capture filter in tcpdump's language (e.g. 'tcp port 80 or "
                   "udp'), run by libpcap: frames it rejects are skipped and counted")
    add_engine_options(r)
    add_output_options(r)
    r.set_defaults(func=cmd_read)

    rules = sub.add_parser("rules", help="check or show a rule base",
                           description="Validate a rule file or print its rule tree.",
                           epilog=EXIT_CODES, formatter_class=fmt)
    rsub = rules.add_subparsers(dest="rules_command", metavar="ACTION", parser_class=_Parser)
    rules.set_defaults(func=lambda _a: (rules.print_help(sys.stderr), EXIT_USAGE)[1])
    for name, func, text in (
        ("check", cmd_rules_check, "validate; exit 1 on any error"),
        ("tree", cmd_rules_tree, "print service nodes and the content nodes under each"),
    ):
        c = rsub.add_parser(name, help=text, description=text, epilog=EXIT_CODES,
                            formatter_class=fmt)
        c.add_argument("file", type=_path, metavar="FILE", help="rule file")
        c.add_argument("--skip-bad-rules", action="store_true",
                       help="load the good rules, reporting each bad one")
        if name == "check":
            c.add_argument("--iprep-categories", type=_path, metavar="FILE",
                           help="IP reputation categories, for iprep rules")
            c.add_argument("--iprep", type=_path, action="append", metavar="FILE",
                           help="IP reputation file (repeatable)")
        c.set_defaults(func=func)
    from .sensor import add_sensor_commands  # attach, detach, status, lab
    add_sensor_commands(sub, fmt)
    return p


def main(argv=None) -> int:
    # Started with stdout or stderr closed (a daemon's `>&-`), Python sets
    # them to None, and the first print or flush of an alert would raise:
    # what would have gone there goes nowhere instead; the logs are whole.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
