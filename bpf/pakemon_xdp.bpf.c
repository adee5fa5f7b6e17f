/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pakemon_xdp.bpf.c -- the kernel sensor: filter by the rule set's service
 * ports, push candidate frames to userland through a perf ring buffer.
 *
 * Stage: capture (kernel half). Loaded by pakemon/capture/xdp.py with bcc
 * (BPF(src_file=..., cflags=["-I<bpf dir>"])): bcc compiles each non-static
 * function into its own section, so pk_xdp (XDP, ingress) and pk_tc_egress
 * (tc clsact egress, BPF.SCHED_CLS, for --direction both) are two programs
 * over one set of maps and one decision function, pk_inspect().
 *
 * In:  every frame of the interface. Out: a perf record (struct
 * pk_event_meta, then cap_len frame bytes) for each candidate, per-CPU
 * counters, and a verdict that is PASS for everything (passive, fail-open:
 * a malformed frame is passed and counted) except flows in pk_block while
 * userland has set PK_CFG_BLOCK.
 *
 * Which frames are candidates (userland's rule tree decides the rest):
 *   - TCP/UDP: a service key {proto, port, dir} per port of each service
 *     node, filled by userland from the rule tree (pk_services). A frame TO
 *     a PK_DIR_DST port or FROM a PK_DIR_SRC port is client->server data of
 *     a rule and goes out whole. A TCP frame the other way round (the
 *     server's side) goes out cut after its TCP header: stream state needs
 *     its SYN/FIN/RST flags and ACK numbers, never its payload. UDP has no
 *     stream state: its reverse direction is not pushed.
 *   - ICMP/ICMPv6: a key per rule type (port = type, dir = PK_DIR_DST).
 *   - any-port flags (struct pk_config.any_ports) push a whole protocol:
 *     rules with `*` on both sides, and `ip` rules (every protocol).
 *   - every IP fragment, whole: later fragments carry no ports and the
 *     defragmenter needs all of them.
 *   - scan probes (PK_CFG_SCAN_TCP/UDP): headers of TCP without ACK and of
 *     UDP, any port, for pakemon/detect/scan.py.
 *   - flows in pk_bypass (userland has seen enough of them) are skipped and
 *     counted until their entry is older than bypass_timeout_ns.
 *
 * References: xdp-tutorial tracing04-xdp-tcpdump (perf output of packet
 * bytes through the flags' upper 32 bits); Suricata ebpf/xdp_filter.c
 * (flow bypass with a last-seen timestamp, fail-open on bad input).
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "pakemon_abi.h"
#include "parse_helpers.h"

#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif

/* tc: bytes of a locally generated frame made linear before parsing. An
 * egress skb of a GSO super-packet or a sendfile() may keep headers in
 * paged data, where direct packet access cannot reach; 256 bytes covers
 * Ethernet + 2 VLAN tags + IPv6 with common extension headers + TCP with
 * options. */
#define PK_TC_PULL_LEN 256

/* ---- maps (names are the ones pakemon/abi.py looks up) ----------------- */

/* Candidate records: struct pk_event_meta + frame bytes. */
BPF_PERF_OUTPUT(events);

/* enum pk_counter -> count; per CPU, so no atomics on the hot path. */
BPF_PERCPU_ARRAY(pk_counters, __u64, PK_CNT__MAX);

/* struct pk_config at index 0, written by userland. */
BPF_ARRAY(pk_config, struct pk_config, 1);

/* Service keys; no preallocation (see PK_SERVICE_MAX). */
BPF_F_TABLE("hash", struct pk_service_key, struct pk_service_val, pk_services,
	    PK_SERVICE_MAX, BPF_F_NO_PREALLOC);

/* Flows userland no longer needs to see; LRU evicts the oldest when full. */
BPF_TABLE("lru_hash", struct pk_flow_key, struct pk_flow_val, pk_bypass, PK_BYPASS_MAX);

/* Flows an alert marked; dropped only while PK_CFG_BLOCK is set. */
BPF_TABLE("lru_hash", struct pk_flow_key, struct pk_block_val, pk_block, PK_BLOCK_MAX);

/* Never read or written by the program: its value type gives userland
 * bcc's compiled layout of struct pk_event_meta to check abi.PerfMeta
 * against (bcc 0.26 derives event() only for perf_submit, and the frame
 * bytes need perf_submit_skb). */
BPF_ARRAY(pk_meta_layout, struct pk_event_meta, 1);

/* ---- the decision ------------------------------------------------------ */

/* What pk_inspect() decided for one frame. */
struct pk_verdict {
	__u32 cap_len;  /* frame bytes to push; 0: not a candidate */
	__u16 flags;    /* PK_EVF_* */
	__u8  drop;     /* 1: a blocked flow */
};

static __always_inline void pk_count(__u32 idx, __u64 n)
{
	__u64 *v = pk_counters.lookup(&idx);

	/* An index below PK_CNT__MAX always exists; the NULL check is the
	 * verifier's proof before the dereference. */
	if (v)
		*v += n;
}

static __always_inline int pk_service(__u8 proto, __be16 port, __u8 dir)
{
	struct pk_service_key key = {};

	key.proto = proto;
	key.dir = dir;
	key.port = port;
	return pk_services.lookup(&key) != NULL;
}

/* Add the class counters of one frame (paper section 4.2 table). */
static __always_inline void pk_count_class(int proto, __u32 pkt_len)
{
	pk_count(PK_CNT_IP_FRAMES, 1);
	pk_count(PK_CNT_IP_BYTES, pkt_len);
	if (proto == IPPROTO_TCP) {
		pk_count(PK_CNT_TCP_FRAMES, 1);
		pk_count(PK_CNT_TCP_BYTES, pkt_len);
	} else if (proto == IPPROTO_UDP) {
		pk_count(PK_CNT_UDP_FRAMES, 1);
		pk_count(PK_CNT_UDP_BYTES, pkt_len);
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		pk_count(PK_CNT_ICMP_FRAMES, 1);
		pk_count(PK_CNT_ICMP_BYTES, pkt_len);
	} else {
		pk_count(PK_CNT_OTHER_FRAMES, 1);
		pk_count(PK_CNT_OTHER_BYTES, pkt_len);
	}
}

static __always_inline void pk_malformed(__u32 pkt_len)
{
	pk_count(PK_CNT_MALFORMED, 1);
	pk_count(PK_CNT_OTHER_FRAMES, 1);
	pk_count(PK_CNT_OTHER_BYTES, pkt_len);
}

/*
 * Decide for the frame in [data, data_end) of wire length pkt_len:
 * count it, and fill *v (push how much, drop or not).
 */
static __always_inline void pk_inspect(void *data, void *data_end, __u32 pkt_len,
				       struct pk_verdict *v)
{
	struct pk_cursor c = { .pos = data, .end = data_end };
	struct pk_ipv6_walk walk = {};
	struct pk_flow_key fk = {};
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct tcphdr *tcph = NULL;
	struct udphdr *udph;
	struct pk_icmp_hdr *icmph;
	struct pk_config *cfg;
	struct pk_flow_val *fv;
	struct pk_block_val *bv;
	__u32 zero = 0, hdr_end = 0, snaplen, cap = 0;
	__u16 flags = 0, frag_off;
	__be16 sport = 0, dport = 0;
	int eth_type, proto, is_frag = 0, later_frag = 0, have_l4 = 0;
	int icmp_type = -1, push_full = 0, push_hdr = 0;
	__u64 now;

	pk_count(PK_CNT_FRAMES, 1);
	pk_count(PK_CNT_BYTES, pkt_len);

	cfg = pk_config.lookup(&zero);
	/* Index 0 of an array always exists; the check is for the verifier. */
	if (!cfg)
		return;

	/* ---- link and network layers ---- */
	eth_type = pk_parse_ethhdr(&c, &eth);
	if (eth_type == -2) {
		/* More VLAN tags than the walk takes: Linux strips priority
		 * tags without end, so userland's decoder must see it (whole;
		 * not classed, its protocol unknown here). */
		pk_count(PK_CNT_OTHER_FRAMES, 1);
		pk_count(PK_CNT_OTHER_BYTES, pkt_len);
		pk_count(PK_CNT_DEEP_HEADERS, 1);
		push_full = 1;
		flags |= PK_EVF_FORWARD;
		goto out;
	}
	if (eth_type == ETH_P_IP) {
		proto = pk_parse_iphdr(&c, &iph);
		if (proto < 0) {
			pk_malformed(pkt_len);
			return;
		}
		frag_off = bpf_ntohs(iph->frag_off);
		is_frag = (frag_off & (PK_IP_MF | PK_IP_OFFSET)) != 0;
		later_frag = (frag_off & PK_IP_OFFSET) != 0;
		fk.family = 4;
		fk.saddr[0] = iph->saddr;
		fk.daddr[0] = iph->daddr;
	} else if (eth_type == ETH_P_IPV6) {
		proto = pk_parse_ipv6hdr(&c, &ip6h);
		if (proto >= 0)
			proto = pk_skip_ipv6_exthdrs(&c, proto, &walk);
		if (proto == -2) {
			/* More extension headers than the walk takes: the
			 * host reads on, so userland decodes it (whole, as a
			 * fragment; no ports known, so no bypass or block). */
			pk_count_class(proto, pkt_len);
			pk_count(PK_CNT_DEEP_HEADERS, 1);
			push_full = 1;
			flags |= PK_EVF_FORWARD;
			goto out;
		}
		if (proto < 0) {
			pk_malformed(pkt_len);
			return;
		}
		if (walk.frag) {
			frag_off = bpf_ntohs(walk.frag->frag_off);
			/* Offset 0 with M clear is an atomic fragment (RFC 6946):
			 * a whole datagram, as the Python decoder treats it. */
			is_frag = (frag_off & (PK_IP6_MF | PK_IP6_OFFSET)) != 0;
			later_frag = (frag_off & PK_IP6_OFFSET) != 0;
		}
		fk.family = 6;
		/* Word by word: four 4-byte packet loads the verifier has
		 * already bounded by the 40-byte header check. */
		fk.saddr[0] = ip6h->saddr.in6_u.u6_addr32[0];
		fk.saddr[1] = ip6h->saddr.in6_u.u6_addr32[1];
		fk.saddr[2] = ip6h->saddr.in6_u.u6_addr32[2];
		fk.saddr[3] = ip6h->saddr.in6_u.u6_addr32[3];
		fk.daddr[0] = ip6h->daddr.in6_u.u6_addr32[0];
		fk.daddr[1] = ip6h->daddr.in6_u.u6_addr32[1];
		fk.daddr[2] = ip6h->daddr.in6_u.u6_addr32[2];
		fk.daddr[3] = ip6h->daddr.in6_u.u6_addr32[3];
	} else {
		/* ARP, LLC, ... (or a cut Ethernet header): nothing a rule
		 * can match; counted OTHER, as the pipeline does. */
		if (eth_type < 0)
			pk_count(PK_CNT_MALFORMED, 1);
		pk_count(PK_CNT_OTHER_FRAMES, 1);
		pk_count(PK_CNT_OTHER_BYTES, pkt_len);
		pk_count(PK_CNT_PASSED_OVER, 1);
		return;
	}
	fk.proto = proto;

	/* ---- transport layer (not in later fragments: no header there) ---- */
	if (!later_frag) {
		if (proto == IPPROTO_TCP) {
			have_l4 = pk_parse_tcphdr(&c, &tcph) > 0;
			if (have_l4) {
				sport = tcph->source;
				dport = tcph->dest;
			}
		} else if (proto == IPPROTO_UDP) {
			have_l4 = pk_parse_udphdr(&c, &udph) > 0;
			if (have_l4) {
				sport = udph->source;
				dport = udph->dest;
			}
		} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
			icmp_type = pk_parse_icmphdr(&c, &icmph);
			have_l4 = icmp_type >= 0;
		} else {
			/* No ports: the flow is the address pair and protocol. */
			have_l4 = 1;
		}
		/* A whole datagram with a cut transport header is malformed; a
		 * first fragment may legitimately cut it (the decoder is lenient
		 * there too), and is pushed whole below anyway. */
		if (!have_l4 && !is_frag) {
			pk_malformed(pkt_len);
			return;
		}
	}
	/* Offset of the end of the transport header, for header-only records:
	 * a scalar, so no packet-pointer arithmetic survives past here. */
	hdr_end = c.pos - data;
	pk_count_class(proto, pkt_len);
	fk.sport = sport;
	fk.dport = dport;

	/* ---- block: only when userland enabled it, only with a flow key ---- */
	if ((cfg->flags & PK_CFG_BLOCK) && have_l4) {
		bv = pk_block.lookup(&fk);
		if (bv) {
			/* Several CPUs may drop packets of one flow at once. */
			__sync_fetch_and_add(&bv->packets, 1);
			__sync_fetch_and_add(&bv->bytes, pkt_len);
			pk_count(PK_CNT_BLOCKED, 1);
			v->drop = 1;
			return;
		}
	}

	/* ---- fragments: every one goes out whole ---- */
	if (is_frag) {
		pk_count(PK_CNT_FRAGMENTS, 1);
		push_full = 1;
		flags |= PK_EVF_FRAGMENT;
		goto out;
	}

	/* ---- bypass: a flow userland has finished with ---- */
	fv = pk_bypass.lookup(&fk);
	if (fv) {
		now = bpf_ktime_get_ns();
		/* A stale entry (the flow went quiet, then this tuple came back,
		 * possibly as a new connection) is dropped so userland sees the
		 * flow again. */
		if (cfg->bypass_timeout_ns && now - fv->last_seen_ns > cfg->bypass_timeout_ns) {
			pk_bypass.delete(&fk);
			pk_count(PK_CNT_BYPASS_EXPIRED, 1);
		} else {
			/* A racing CPU may write an older time: harmless, it is
			 * within a few nanoseconds. */
			fv->last_seen_ns = now;
			__sync_fetch_and_add(&fv->packets, 1);
			__sync_fetch_and_add(&fv->bytes, pkt_len);
			pk_count(PK_CNT_BYPASSED, 1);
			return;
		}
	}

	/* ---- services ---- */
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		if (cfg->any_ports & (proto == IPPROTO_TCP ? PK_ANY_TCP : PK_ANY_UDP)) {
			push_full = 1;
			flags |= PK_EVF_ANY_PORT | PK_EVF_FORWARD;
		} else if (pk_service(proto, dport, PK_DIR_DST) ||
			   pk_service(proto, sport, PK_DIR_SRC)) {
			push_full = 1;
			flags |= PK_EVF_FORWARD;
		} else if (proto == IPPROTO_TCP &&
			   (pk_service(proto, sport, PK_DIR_DST) ||
			    pk_service(proto, dport, PK_DIR_SRC))) {
			push_hdr = 1;
			flags |= PK_EVF_REVERSE;
		}
		if (!push_full && !push_hdr) {
			/* tcph is set whenever proto is TCP here: not a fragment,
			 * so the header parsed; the NULL test is for the verifier. */
			if (proto == IPPROTO_TCP && (cfg->flags & PK_CFG_SCAN_TCP) &&
			    tcph && !tcph->ack) {
				push_hdr = 1;
				flags |= PK_EVF_PROBE;
			} else if (proto == IPPROTO_UDP && (cfg->flags & PK_CFG_SCAN_UDP)) {
				push_hdr = 1;
				flags |= PK_EVF_PROBE;
			}
		}
	} else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
		if (cfg->any_ports & PK_ANY_ICMP) {
			push_full = 1;
			flags |= PK_EVF_ANY_PORT | PK_EVF_FORWARD;
		} else if (icmp_type >= 0 &&
			   pk_service(proto, bpf_htons((__u16)icmp_type), PK_DIR_DST)) {
			push_full = 1;
			flags |= PK_EVF_FORWARD;
		}
	} else if (cfg->any_ports & PK_ANY_OTHER) {
		push_full = 1;
		flags |= PK_EVF_ANY_PORT | PK_EVF_FORWARD;
	}

out:
	if (!push_full && !push_hdr) {
		pk_count(PK_CNT_PASSED_OVER, 1);
		return;
	}
	if (push_full) {
		cap = pkt_len;
	} else {
		cap = hdr_end;
		flags |= PK_EVF_HDR_ONLY;
		pk_count(PK_CNT_HDR_ONLY, 1);
	}
	snaplen = cfg->snaplen;
	/* Clamp to a constant: the perf sample size must fit its u16 header
	 * (see PK_SNAPLEN_MAX), whatever userland wrote. */
	if (snaplen == 0 || snaplen > PK_SNAPLEN_MAX)
		snaplen = PK_SNAPLEN_MAX;
	if (cap > snaplen) {
		cap = snaplen;
		flags |= PK_EVF_SNAPLEN;
	}
	/* The helper refuses (-EFAULT) a length past the packet: never ask. */
	if (cap > pkt_len)
		cap = pkt_len;
	v->cap_len = cap;
	v->flags = flags;
}

/* Send the record for a candidate; count the outcome. ctx is the XDP or tc
 * context: the helper picks the packet copier by program type. (A function,
 * not a macro: bcc cannot rewrite map calls inside macro expansions.) */
static __always_inline void pk_submit(void *ctx, __u32 ifindex, __u8 hook, __u32 pkt_len,
				      struct pk_verdict *v)
{
	struct pk_event_meta meta = {};
	int rc;

	meta.ts_ns = bpf_ktime_get_ns();
	meta.ifindex = ifindex;
	meta.pkt_len = pkt_len;
	meta.cap_len = v->cap_len;
	meta.flags = v->flags;
	meta.hook = hook;
	meta.abi_version = PK_ABI_VERSION;
	/* bcc rewrites this to bpf_perf_event_output(ctx, &events,
	 * ((u64)cap_len << 32) | BPF_F_CURRENT_CPU, &meta, sizeof(meta)): the
	 * kernel appends cap_len bytes of the frame after meta. The length is
	 * a plain scalar to the verifier; the helper checks it against the
	 * packet at run time, and pk_inspect() clamped it to the packet and
	 * to PK_SNAPLEN_MAX. */
	rc = events.perf_submit_skb(ctx, v->cap_len, &meta, sizeof(meta));
	if (rc < 0) {
		pk_count(PK_CNT_PERF_FAIL, 1);
	} else {
		pk_count(PK_CNT_CANDIDATES, 1);
		pk_count(PK_CNT_CANDIDATE_BYTES, v->cap_len);
	}
}

/* ---- XDP, ingress ------------------------------------------------------ */

int pk_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pk_verdict v = {};
	__u32 pkt_len = data_end - data;

	pk_inspect(data, data_end, pkt_len, &v);
	if (v.cap_len)
		pk_submit(ctx, ctx->ingress_ifindex, PK_HOOK_XDP, pkt_len, &v);
	return v.drop ? XDP_DROP : XDP_PASS;
}

/* ---- tc clsact egress -------------------------------------------------- */

int pk_tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct pk_verdict v = {};
	__u32 pkt_len = skb->len;
	__u32 pull;

	if (data_end - data < PK_TC_PULL_LEN && pkt_len > data_end - data) {
		pull = pkt_len < PK_TC_PULL_LEN ? pkt_len : PK_TC_PULL_LEN;
		/* Linearizes, never changes bytes. On failure parse what is
		 * linear: a short header then counts malformed and passes. */
		bpf_skb_pull_data(skb, pull);
		/* The helper invalidates every packet pointer: reload both. */
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}

	pk_inspect(data, data_end, pkt_len, &v);
	if (v.cap_len)
		pk_submit(skb, skb->ifindex, PK_HOOK_TC_EGRESS, pkt_len, &v);
	/* UNSPEC, not OK: let any later filter on the hook run too. */
	return v.drop ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}
