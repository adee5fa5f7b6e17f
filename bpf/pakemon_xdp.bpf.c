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
 *   - with PK_CFG_COALESCE, the server's header-only data segments in a row
 *     are merged into one pending range per flow (pk_pending) and pushed as
 *     one record before the flow's next packet, either way (pk_coalesce();
 *     struct pk_pending in pakemon_abi.h says why that is enough).
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

/* Pending ranges of the server's header-only data segments (struct
 * pk_pending; PK_CFG_COALESCE). Keyed by the server->client direction. */
BPF_F_TABLE("hash", struct pk_flow_key, struct pk_pending, pk_pending, PK_PENDING_MAX,
	    BPF_F_NO_PREALLOC);

/* Index 0: CLOCK_MONOTONIC until which nothing is merged (a frame no flow
 * could be told for was seen; see PK_COALESCE_QUIET_NS). */
BPF_ARRAY(pk_quiet, __u64, 1);

/* A pending range on its way out: meta, then the header bytes. Per CPU, as
 * the stack has no room for it next to pk_inspect()'s. */
struct pk_flush_rec {
	struct pk_event_meta meta;
	/* PK_COALESCE_HDR_MAX bytes are used; the room past them lets
	 * pk_emit() bound its offsets with a mask (& 0xff), which the
	 * verifier follows through the compiler's register copies. */
	__u8 frame[256 + 16];
};
BPF_PERCPU_ARRAY(pk_flush_buf, struct pk_flush_rec, 1);

/* Never written: zero bytes to insert new pk_pending entries from (the
 * stack has no room for one, and a helper may not read a value that holds
 * a spin lock, so not a struct pk_pending). */
struct pk_zero_val {
	__u8 b[sizeof(struct pk_pending)];
};
BPF_ARRAY(pk_zero, struct pk_zero_val, 1);

/* Never read or written by the program: its value type gives userland
 * bcc's compiled layout of struct pk_event_meta to check abi.PerfMeta
 * against (bcc 0.26 derives event() only for perf_submit, and the frame
 * bytes need perf_submit_skb). */
BPF_ARRAY(pk_meta_layout, struct pk_event_meta, 1);

/* ---- the decision ------------------------------------------------------ */

/* pk_verdict.coalesce: what the frame means to pending ranges. */
#define PK_CO_PEER   (1 << 0) /* push the reverse direction's range first */
#define PK_CO_SELF   (1 << 1) /* push this direction's range first, or ... */
#define PK_CO_MERGE  (1 << 2) /* ... merge this segment into it */

/* What pk_inspect() decided for one frame. */
struct pk_verdict {
	__u32 cap_len;  /* frame bytes to push; 0: not a candidate */
	__u16 flags;    /* PK_EVF_* */
	__u8  drop;     /* 1: a blocked flow */
	__u8  coalesce; /* PK_CO_* (0 unless PK_CFG_COALESCE) */
	__u32 seq;      /* TCP, host order */
	__u32 ack;      /* TCP, host order */
	__u32 plen;     /* TCP payload bytes by the IP length */
	__u16 l3_off;   /* IP header offset in the frame */
	__u16 l4_off;   /* TCP header offset in the frame */
	struct pk_flow_key fk;
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
	struct pk_flow_key *fkp = &v->fk;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct tcphdr *tcph = NULL;
	struct udphdr *udph;
	struct pk_icmp_hdr *icmph;
	struct pk_config *cfg;
	struct pk_flow_val *fv;
	struct pk_block_val *bv;
	__u32 zero = 0, hdr_end = 0, snaplen, cap = 0, ip_end = 0;
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
		flags |= PK_EVF_FORWARD | PK_EVF_NO_FLOW;
		goto out;
	}
	if (eth_type == ETH_P_IP) {
		proto = pk_parse_iphdr(&c, &iph);
		if (proto < 0) {
			pk_malformed(pkt_len);
			return;
		}
		v->l3_off = (void *)iph - data;
		ip_end = v->l3_off + bpf_ntohs(iph->tot_len);
		frag_off = bpf_ntohs(iph->frag_off);
		is_frag = (frag_off & (PK_IP_MF | PK_IP_OFFSET)) != 0;
		later_frag = (frag_off & PK_IP_OFFSET) != 0;
		fkp->family = 4;
		fkp->saddr[0] = iph->saddr;
		fkp->daddr[0] = iph->daddr;
	} else if (eth_type == ETH_P_IPV6) {
		proto = pk_parse_ipv6hdr(&c, &ip6h);
		if (proto >= 0) {
			v->l3_off = (void *)ip6h - data;
			ip_end = v->l3_off + sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
			proto = pk_skip_ipv6_exthdrs(&c, proto, &walk);
		}
		if (proto == -2) {
			/* More extension headers than the walk takes: the
			 * host reads on, so userland decodes it (whole, as a
			 * fragment; no ports known, so no bypass or block). */
			pk_count_class(proto, pkt_len);
			pk_count(PK_CNT_DEEP_HEADERS, 1);
			push_full = 1;
			flags |= PK_EVF_FORWARD | PK_EVF_NO_FLOW;
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
		fkp->family = 6;
		/* Word by word: four 4-byte packet loads the verifier has
		 * already bounded by the 40-byte header check. */
		fkp->saddr[0] = ip6h->saddr.in6_u.u6_addr32[0];
		fkp->saddr[1] = ip6h->saddr.in6_u.u6_addr32[1];
		fkp->saddr[2] = ip6h->saddr.in6_u.u6_addr32[2];
		fkp->saddr[3] = ip6h->saddr.in6_u.u6_addr32[3];
		fkp->daddr[0] = ip6h->daddr.in6_u.u6_addr32[0];
		fkp->daddr[1] = ip6h->daddr.in6_u.u6_addr32[1];
		fkp->daddr[2] = ip6h->daddr.in6_u.u6_addr32[2];
		fkp->daddr[3] = ip6h->daddr.in6_u.u6_addr32[3];
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
	fkp->proto = proto;

	/* ---- transport layer (not in later fragments: no header there) ---- */
	if (!later_frag) {
		if (proto == IPPROTO_TCP) {
			have_l4 = pk_parse_tcphdr(&c, &tcph) > 0;
			if (have_l4) {
				sport = tcph->source;
				dport = tcph->dest;
				v->l4_off = (void *)tcph - data;
				v->seq = bpf_ntohl(tcph->seq);
				v->ack = bpf_ntohl(tcph->ack_seq);
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
	fkp->sport = sport;
	fkp->dport = dport;

	/* ---- block: only when userland enabled it, only with a flow key ---- */
	if ((cfg->flags & PK_CFG_BLOCK) && have_l4) {
		bv = pk_block.lookup(fkp);
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
		/* A TCP fragment is no flow's the program can tell (a later one
		 * has no ports), so merging stops for a while (pk_coalesce). */
		if (proto == IPPROTO_TCP)
			flags |= PK_EVF_NO_FLOW;
		pk_count(PK_CNT_FRAGMENTS, 1);
		push_full = 1;
		flags |= PK_EVF_FRAGMENT;
		goto out;
	}

	/* ---- bypass: a flow userland has finished with ---- */
	fv = pk_bypass.lookup(fkp);
	if (fv) {
		now = bpf_ktime_get_ns();
		/* A stale entry (the flow went quiet, then this tuple came back,
		 * possibly as a new connection) is dropped so userland sees the
		 * flow again. */
		if (cfg->bypass_timeout_ns && now - fv->last_seen_ns > cfg->bypass_timeout_ns) {
			pk_bypass.delete(fkp);
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

	/* ---- coalescing: what this frame means to pending ranges ---- */
	if ((cfg->flags & PK_CFG_COALESCE) && proto == IPPROTO_TCP && tcph) {
		if (flags & PK_EVF_FORWARD) {
			v->coalesce = PK_CO_PEER;
		} else if (push_hdr && (flags & PK_EVF_REVERSE)) {
			v->coalesce = PK_CO_SELF;
			/* Mergeable: ACK (PSH) only, the IP length within the
			 * frame (bytes past it, Ethernet padding, are no part
			 * of the segment), the header within what a range
			 * keeps and readable here (tc: in the linear part),
			 * and not cut by the snaplen. Payload or not: a pure
			 * ACK (the server acknowledging a request) starts the
			 * range its answer joins. */
			if (ip_end <= pkt_len && ip_end >= hdr_end &&
			    (((__u8 *)tcph)[13] & ~0x18) == 0 && tcph->ack &&
			    hdr_end <= PK_COALESCE_HDR_MAX &&
			    (cfg->snaplen == 0 || hdr_end <= cfg->snaplen) &&
			    data + hdr_end <= data_end) {
				v->plen = ip_end - hdr_end;
				v->coalesce |= PK_CO_MERGE;
			}
		}
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

/* ---- coalescing (struct pk_pending) ------------------------------------ */

/* What a range taken out of its entry needs after the lock is dropped. */
struct pk_taken {
	__u32 seq_first;
	__u32 bytes;
	__u32 last_plen;
	__u16 l3_off;
	__u16 l4_off;
	__u8  family;
	__u8  _pad[3];
};

/* With p's lock held: move p's range into r and t, empty p. */
static __always_inline void pk_take(struct pk_pending *p, struct pk_flush_rec *r,
				    struct pk_taken *t, __u64 now)
{
	__u64 *dst = (__u64 *)r->frame;
	__u64 *src = (__u64 *)p->hdr;
	int i;

#pragma unroll
	for (i = 0; i < PK_COALESCE_HDR_MAX / 8; i++)
		dst[i] = src[i];
	r->meta.ifindex = p->ifindex;
	r->meta.cap_len = p->hdr_len;
	r->meta.pkt_len = p->hdr_len + p->bytes;
	r->meta.hook = p->hook;
	t->seq_first = p->seq_first;
	t->bytes = p->bytes;
	t->last_plen = p->last_plen;
	t->l3_off = p->l3_off;
	t->l4_off = p->l4_off;
	t->family = p->family;
	p->frames = 0;
	p->ts_ns = now;
}

/* One's complement 16-bit add (RFC 1071). */
static __always_inline __u32 pk_csum_add(__u32 a, __u32 b)
{
	a += b;
	return (a & 0xffff) + (a >> 16);
}

/* Push a taken range: the last segment's header with the first one's
 * sequence number and an IP length for every byte (IPv4: the header
 * checksum updated as RFC 1624 eqn. 3 does). */
static __always_inline void pk_emit(void *ctx, struct pk_flush_rec *r, struct pk_taken *t,
				    __u64 now)
{
	__u32 cap = r->meta.cap_len, l3 = t->l3_off & 0xff, l4 = t->l4_off & 0xff;
	__u32 old, len, sum;
	__u8 *f = r->frame;
	int rc;

	if (cap > PK_COALESCE_HDR_MAX)
		return;  /* never: pk_start() kept it so; the verifier's bound */
	f[l4 + 4] = t->seq_first >> 24;
	f[l4 + 5] = t->seq_first >> 16;
	f[l4 + 6] = t->seq_first >> 8;
	f[l4 + 7] = t->seq_first;
	if (t->family == 4) {
		old = f[l3 + 2] << 8 | f[l3 + 3];
		len = (old + t->bytes - t->last_plen) & 0xffff;
		f[l3 + 2] = len >> 8;
		f[l3 + 3] = len;
		sum = ~((__u32)f[l3 + 10] << 8 | f[l3 + 11]) & 0xffff;
		sum = pk_csum_add(sum, ~old & 0xffff);
		sum = pk_csum_add(sum, len);
		sum = pk_csum_add(sum, 0);
		sum = ~sum & 0xffff;
		f[l3 + 10] = sum >> 8;
		f[l3 + 11] = sum;
	} else {
		old = f[l3 + 4] << 8 | f[l3 + 5];
		len = old + t->bytes - t->last_plen;
		f[l3 + 4] = len >> 8;
		f[l3 + 5] = len;
	}
	r->meta.ts_ns = now;
	r->meta.flags = PK_EVF_REVERSE | PK_EVF_HDR_ONLY | PK_EVF_COALESCED;
	r->meta.abi_version = PK_ABI_VERSION;
	rc = events.perf_submit(ctx, r, sizeof(r->meta) + cap);
	if (rc < 0) {
		pk_count(PK_CNT_PERF_FAIL, 1);
	} else {
		pk_count(PK_CNT_CANDIDATES, 1);
		pk_count(PK_CNT_CANDIDATE_BYTES, cap);
		pk_count(PK_CNT_COALESCE_RECORDS, 1);
	}
}

/* Push key's range, if it holds one merged since noflow_ns (older ones are
 * userland's: see pk_coalesce()). */
static __always_inline void pk_flush(void *ctx, struct pk_flow_key *key, __u64 now,
				     __u64 noflow_ns)
{
	struct pk_flush_rec *r;
	struct pk_pending *p;
	struct pk_taken t = {};
	__u32 zero = 0;
	int got = 0;

	p = pk_pending.lookup(key);
	if (!p)
		return;
	r = pk_flush_buf.lookup(&zero);
	if (!r)
		return;
	bpf_spin_lock(&p->lock);
	if (p->frames && p->ts_ns > noflow_ns) {
		pk_take(p, r, &t, now);
		got = 1;
	}
	bpf_spin_unlock(&p->lock);
	if (got)
		pk_emit(ctx, r, &t, now);
}

/* With p's lock held: p's range becomes this one segment. */
static __always_inline void pk_start(struct pk_pending *p, void *data, void *data_end,
				     struct pk_verdict *v,
				     __u32 ifindex, __u8 hook, __u32 hdr_len, __u64 now)
{
	__u64 *dst = (__u64 *)p->hdr;
	__u32 o;
	int i;

	/* Whole words, then the word that ends at hdr_len (a pure ACK may end
	 * the frame mid-word; it overlaps the last whole one). The verdict
	 * made sure hdr_len bytes are in the packet; the tests against
	 * data_end are the verifier's. */
#pragma unroll
	for (i = 0; i < PK_COALESCE_HDR_MAX / 8; i++) {
		if (i * 8 + 8 > hdr_len || data + (i + 1) * 8 > data_end)
			break;
		dst[i] = *(__u64 *)(data + i * 8);
	}
	o = (hdr_len - 8) & 0xff;
	if ((hdr_len & 7) && hdr_len >= 8 && o <= PK_COALESCE_HDR_MAX - 8 &&
	    data + o + 8 <= data_end)
		*(__u64 *)(p->hdr + o) = *(__u64 *)(data + o);
	p->frames = 1;
	p->ts_ns = now;
	p->seq_first = v->seq;
	p->seq_next = v->seq + v->plen;
	p->ack = v->ack;
	p->bytes = v->plen;
	p->last_plen = v->plen;
	p->ifindex = ifindex;
	p->hdr_len = hdr_len;
	p->l3_off = v->l3_off;
	p->l4_off = v->l4_off;
	p->family = v->fk.family;
	p->hook = hook;
}

/*
 * Act on pending ranges for a TCP frame (pk_verdict.coalesce); 1 when the
 * frame was merged into a range and must not be pushed on its own.
 */
static __always_inline int pk_coalesce(void *ctx, void *data, void *data_end, __u32 ifindex,
				       __u8 hook, struct pk_verdict *v)
{
	struct pk_flow_key rk = {};
	struct pk_flush_rec *r;
	struct pk_pending *p;
	struct pk_zero_val *z;
	struct pk_taken t = {};
	__u64 now = bpf_ktime_get_ns(), *quiet, noflow_ns = 0;
	__u32 zero = 0, hdr_len = v->cap_len;
	int merge, got = 0, merged = 0, i;

	quiet = pk_quiet.lookup(&zero);
	if (!quiet)
		return 0;  /* never: index 0 of an array */
	if (v->flags & PK_EVF_NO_FLOW) {
		/* No flow to tell (a TCP fragment, a frame past the header
		 * walk): nothing merges for a while; userland pushes every
		 * range before it reads this frame. */
		*quiet = now + PK_COALESCE_QUIET_NS;
		return 0;
	}
	/* Ranges merged before the last such frame are left to userland,
	 * which takes them before it reads that frame: pushed from here, on a
	 * later packet, they would be stamped after it and reach the stream
	 * stage after the segment it may complete. */
	if (*quiet)
		noflow_ns = *quiet - PK_COALESCE_QUIET_NS;
	if (v->coalesce & PK_CO_PEER) {
		rk.family = v->fk.family;
		rk.proto = v->fk.proto;
		rk.sport = v->fk.dport;
		rk.dport = v->fk.sport;
#pragma unroll
		for (i = 0; i < 4; i++) {
			rk.saddr[i] = v->fk.daddr[i];
			rk.daddr[i] = v->fk.saddr[i];
		}
		pk_flush(ctx, &rk, now, noflow_ns);
		return 0;
	}
	if (!(v->coalesce & PK_CO_SELF))
		return 0;
	/* (pk_inspect() made sure a mergeable header fits a range and lies in
	 * the packet) */
	merge = (v->coalesce & PK_CO_MERGE) && now >= *quiet;
	p = pk_pending.lookup(&v->fk);
	if (!p) {
		if (!merge)
			return 0;
		/* Inserted from zero bytes (pk_zero): see its declaration. */
		z = pk_zero.lookup(&zero);
		if (!z)
			return 0;
		if (pk_pending.insert(&v->fk, (struct pk_pending *)z) != 0) {
			/* Full, or another CPU inserted it first. */
			p = pk_pending.lookup(&v->fk);
			if (!p) {
				pk_count(PK_CNT_COALESCE_FULL, 1);
				return 0;
			}
		} else {
			p = pk_pending.lookup(&v->fk);
			if (!p)
				return 0;
		}
	}
	r = pk_flush_buf.lookup(&zero);
	if (!r)
		return 0;
	bpf_spin_lock(&p->lock);
	if (p->frames) {
		if (merge && now - p->ts_ns < PK_COALESCE_HOLD_NS && p->seq_next == v->seq &&
		    p->ack == v->ack && p->bytes + v->plen <= PK_COALESCE_BYTES_MAX &&
		    p->ifindex == ifindex && p->hook == hook) {
			__u32 first = p->seq_first, bytes = p->bytes + v->plen;
			__u32 frames = p->frames + 1;

			pk_start(p, data, data_end, v, ifindex, hook, hdr_len, now);
			p->seq_first = first;
			p->bytes = bytes;
			p->frames = frames;
			merged = 1;
		} else if (p->ts_ns > noflow_ns) {
			pk_take(p, r, &t, now);
			got = 1;
		}
	}
	if (!merged && merge && !p->frames) {
		pk_start(p, data, data_end, v, ifindex, hook, hdr_len, now);
		merged = 1;
	}
	bpf_spin_unlock(&p->lock);
	if (got)
		pk_emit(ctx, r, &t, now);
	if (!merged)
		return 0;
	pk_count(PK_CNT_COALESCED, 1);
	/* Userland's sweeper may have taken the entry out between our lookup
	 * and the merge (bpf_map_lookup_and_delete_elem): then the segment
	 * also goes out on its own. A copy it may already hold is a
	 * retransmission to the stream stage; a lost segment would not be. */
	if (pk_pending.lookup(&v->fk) != p)
		return 0;
	return 1;
}

/* ---- XDP, ingress ------------------------------------------------------ */

int pk_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct pk_verdict v = {};
	__u32 pkt_len = data_end - data;

	pk_inspect(data, data_end, pkt_len, &v);
	if ((v.coalesce || (v.flags & PK_EVF_NO_FLOW)) &&
	    pk_coalesce(ctx, data, data_end, ctx->ingress_ifindex, PK_HOOK_XDP, &v))
		return XDP_PASS;
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
	if ((v.coalesce || (v.flags & PK_EVF_NO_FLOW)) &&
	    pk_coalesce(skb, data, data_end, skb->ifindex, PK_HOOK_TC_EGRESS, &v))
		return TC_ACT_UNSPEC;
	if (v.cap_len)
		pk_submit(skb, skb->ifindex, PK_HOOK_TC_EGRESS, pkt_len, &v);
	/* UNSPEC, not OK: let any later filter on the hook run too. */
	return v.drop ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}
