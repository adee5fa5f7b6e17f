/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * parse_helpers.h -- cursor-style, bounds-checked packet header parsers for
 * the kernel sensor (XDP and tc share them: both hand over data/data_end).
 *
 * Contract (the shape of xdp-tutorial's common/parsing_helpers.h):
 *   - struct pk_cursor holds the next unparsed byte and the end of the
 *     directly readable data;
 *   - each pk_parse_* checks that its whole header lies before the end, sets
 *     *hdr, advances the cursor past the header, and returns the next
 *     protocol (or the header length, as each function says) in HOST byte
 *     order; on a header that is cut short or inconsistent it returns -1 and
 *     leaves the cursor where it was. The caller then passes the packet
 *     (fail-open) and counts it malformed.
 *
 * Every `if (p + n > c->end)` below is the verifier's bounds proof for the
 * packet read that follows it: without it the program does not load.
 *
 * References: IEEE 802.1Q (VLAN, QinQ 802.1ad), RFC 791 (IPv4, IHL),
 * RFC 8200 (IPv6 and extension headers), RFC 4302 (AH length unit),
 * RFC 793 (TCP data offset), RFC 768 (UDP), RFC 792 / 4443 (ICMP, ICMPv6).
 */
#ifndef PAKEMON_PARSE_HELPERS_H
#define PAKEMON_PARSE_HELPERS_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "pakemon_abi.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* IPv4 frag_off bits (host order after ntohs), RFC 791. */
#define PK_IP_MF     0x2000
#define PK_IP_OFFSET 0x1FFF

/* IPv6 fragment header frag_off bits (host order), RFC 8200 4.5. */
#define PK_IP6_MF      0x0001
#define PK_IP6_OFFSET  0xFFF8

struct pk_cursor {
	void *pos;  /* next unparsed byte */
	void *end;  /* data_end: one past the last directly readable byte */
};

struct pk_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* The part of an IPv6 extension header common to hop-by-hop, routing,
 * destination options and AH: next header, then length in units. */
struct pk_ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct pk_ipv6_frag_hdr {
	__u8   nexthdr;
	__u8   reserved;
	__be16 frag_off;   /* offset (13 bits, 8-byte units) << 3 | M */
	__be32 identification;
};

/* The 4 bytes ICMP and ICMPv6 share; both decoders need no more. */
struct pk_icmp_hdr {
	__u8   type;
	__u8   code;
	__be16 checksum;
};

/* What the IPv6 walk found: the transport protocol (or -1) and the
 * fragment header, if any. */
struct pk_ipv6_walk {
	struct pk_ipv6_frag_hdr *frag;
};

/*
 * Ethernet, then up to PK_VLAN_MAX stacked 802.1Q/802.1ad tags.
 * Returns the EtherType of the payload (host order), -1 (cut short), or -2
 * (more tags than that).
 */
static __always_inline int pk_parse_ethhdr(struct pk_cursor *c, struct ethhdr **eth)
{
	struct ethhdr *e = c->pos;
	struct pk_vlan_hdr *vh;
	void *pos;
	__u16 proto;
	int i;

	/* bounds: the 14-byte Ethernet header */
	if ((void *)(e + 1) > c->end)
		return -1;
	pos = e + 1;
	proto = e->h_proto;

	/* A constant trip count: the verifier sees at most PK_VLAN_MAX copies
	 * of the body after unrolling. */
#pragma unroll
	for (i = 0; i < PK_VLAN_MAX; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = pos;
		/* bounds: one 4-byte tag */
		if ((void *)(vh + 1) > c->end)
			return -1;
		proto = vh->encap_proto;
		pos = vh + 1;
	}
	/* More tags than the walk takes (priority tags can be stacked without
	 * end): -2, for the caller to push the frame whole. */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return -2;

	*eth = e;
	c->pos = pos;
	return bpf_ntohs(proto);
}

/*
 * IPv4 with options: the cursor moves past IHL * 4 bytes.
 * Returns the protocol field, or -1 (short, version not 4, IHL < 5).
 */
static __always_inline int pk_parse_iphdr(struct pk_cursor *c, struct iphdr **iph)
{
	struct iphdr *h = c->pos;
	__u32 hdrsize;

	/* bounds: the fixed 20 bytes, before reading version and IHL */
	if ((void *)(h + 1) > c->end)
		return -1;
	if (h->version != 4 || h->ihl < 5)
		return -1;
	/* IHL is 4 bits, so the verifier knows hdrsize <= 60: the packet
	 * pointer below gets a bounded variable offset it can track. */
	hdrsize = h->ihl * 4;
	/* bounds: the options too */
	if (c->pos + hdrsize > c->end)
		return -1;

	*iph = h;
	c->pos += hdrsize;
	return h->protocol;
}

/*
 * The fixed IPv6 header. Returns next header, or -1 (short, version not 6).
 */
static __always_inline int pk_parse_ipv6hdr(struct pk_cursor *c, struct ipv6hdr **ip6h)
{
	struct ipv6hdr *h = c->pos;

	/* bounds: the 40-byte header */
	if ((void *)(h + 1) > c->end)
		return -1;
	if (h->version != 6)
		return -1;

	*ip6h = h;
	c->pos = h + 1;
	return h->nexthdr;
}

/*
 * Walk IPv6 extension headers starting at next header `nexthdr`: hop-by-hop,
 * routing, destination options ((hdrlen + 1) * 8 bytes), AH ((hdrlen + 2) *
 * 4 bytes) and fragment (8 bytes, remembered in w->frag). Stops at the first
 * other header and returns its number (the transport protocol, or 59 No
 * Next Header); returns -1 if a header is cut short or more than
 * PK_IPV6_EXT_MAX headers are chained.
 */
static __always_inline int pk_skip_ipv6_exthdrs(struct pk_cursor *c, int nexthdr,
						struct pk_ipv6_walk *w)
{
	struct pk_ipv6_opt_hdr *oh;
	struct pk_ipv6_frag_hdr *fh;
	void *pos = c->pos;
	__u32 len;
	int i;

	/* Bounded loop: unrolled PK_IPV6_EXT_MAX times. Each step adds at most
	 * 2048 bytes ((255 + 1) * 8) to the packet offset, so the offset stays
	 * far below the verifier's 64 KiB limit for packet pointers. */
#pragma unroll
	for (i = 0; i < PK_IPV6_EXT_MAX; i++) {
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			oh = pos;
			/* bounds: next header and length bytes */
			if ((void *)(oh + 1) > c->end)
				return -1;
			len = ((__u32)oh->hdrlen + 1) * 8;
			/* bounds: the whole extension header */
			if (pos + len > c->end)
				return -1;
			nexthdr = oh->nexthdr;
			pos += len;
			break;
		case IPPROTO_AH:
			oh = pos;
			/* bounds: next header and length bytes */
			if ((void *)(oh + 1) > c->end)
				return -1;
			len = ((__u32)oh->hdrlen + 2) * 4;
			/* bounds: the whole AH header */
			if (pos + len > c->end)
				return -1;
			nexthdr = oh->nexthdr;
			pos += len;
			break;
		case IPPROTO_FRAGMENT:
			fh = pos;
			/* bounds: the 8-byte fragment header */
			if ((void *)(fh + 1) > c->end)
				return -1;
			w->frag = fh;
			nexthdr = fh->nexthdr;
			pos = fh + 1;
			break;
		default:
			c->pos = pos;
			return nexthdr;
		}
	}
	return -2;  /* the chain goes on: longer than the walk */
}

/*
 * TCP with options. Returns the header length (doff * 4, 20..60), or -1
 * (short, data offset under 5 words or past the data).
 */
static __always_inline int pk_parse_tcphdr(struct pk_cursor *c, struct tcphdr **tcph)
{
	struct tcphdr *h = c->pos;
	__u32 len;

	/* bounds: the fixed 20 bytes, before reading doff */
	if ((void *)(h + 1) > c->end)
		return -1;
	len = h->doff * 4;
	if (len < sizeof(*h))
		return -1;
	/* bounds: the options (doff is 4 bits: len <= 60, a bounded offset) */
	if (c->pos + len > c->end)
		return -1;

	*tcph = h;
	c->pos += len;
	return len;
}

/* UDP. Returns 8, or -1 (short). The length field is userland's to judge. */
static __always_inline int pk_parse_udphdr(struct pk_cursor *c, struct udphdr **udph)
{
	struct udphdr *h = c->pos;

	/* bounds: the 8-byte header */
	if ((void *)(h + 1) > c->end)
		return -1;

	*udph = h;
	c->pos = h + 1;
	return sizeof(*h);
}

/* ICMP or ICMPv6: type, code, checksum. Returns the type, or -1 (short). */
static __always_inline int pk_parse_icmphdr(struct pk_cursor *c, struct pk_icmp_hdr **icmph)
{
	struct pk_icmp_hdr *h = c->pos;

	/* bounds: the 4 bytes both families share */
	if ((void *)(h + 1) > c->end)
		return -1;

	*icmph = h;
	c->pos = h + 1;
	return h->type;
}

#endif /* PAKEMON_PARSE_HELPERS_H */
