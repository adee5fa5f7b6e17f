/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pakemon_abi.h -- the ONE declaration of everything the kernel sensor
 * (bpf/pakemon_xdp.bpf.c) shares with user space.
 *
 * Shared with: pakemon/abi.py, the only ctypes mirror (same names, same
 * order; checked by tests/unit/capture/test_abi.py, which compiles a probe
 * of this file with cc, and at attach time by pakemon/capture/xdp.py, which
 * compares abi.py with the layouts bcc derives from the compiled program).
 *
 * Rules for editing (cilium's drop_reasons.h discipline):
 *   - numbers are append-only: a retired counter index or flag stays here as
 *     PK_..._UNUSEDn and is never reused;
 *   - any change to a struct layout or to the meaning of a number bumps
 *     PK_ABI_VERSION, and abi.py changes in the same commit;
 *   - structs hold only fixed-width types, are laid out without implicit
 *     padding (explicit _pad fields), and state the byte order of each field.
 *
 * Only structs, enums and defines live here: no code, no maps. Include
 * <linux/bpf.h> (the uapi one; bcc: <uapi/linux/bpf.h>) first: struct
 * pk_pending holds a struct bpf_spin_lock.
 */
#ifndef PAKEMON_ABI_H
#define PAKEMON_ABI_H

#include <linux/types.h>

/* Bumped on every incompatible change below. Userland writes it into
 * struct pk_config and compares it with its own copy before attaching. */
#define PK_ABI_VERSION 3

/* ---- limits ------------------------------------------------------------ */

/* Largest number of frame bytes one perf record carries. A perf sample's
 * header holds its size in a u16, which must cover the 8-byte
 * perf_event_header, the 4-byte raw size, struct pk_event_meta, the frame
 * and up to 7 bytes of alignment padding: 65535 - 256 leaves room for all of
 * it with margin for a bigger meta in a later ABI. */
#define PK_SNAPLEN_MAX 65279

/* Default snaplen: every byte of a full-size frame (a 9000-byte jumbo frame
 * fits). The perf ring is sized in pages, so a smaller snaplen only saves
 * ring space; the IDS needs whole payloads to match patterns. */
#define PK_SNAPLEN_DEFAULT PK_SNAPLEN_MAX

/* Service keys: 2 protocols (TCP, UDP) x 2 directions x 65,536 ports, plus
 * 2 ICMP families x 256 types. The map is a hash without preallocation
 * (BPF_F_NO_PREALLOC), so the limit costs nothing until rules fill it; it
 * lets a rule set of port ranges (`1024:65535`) be expressed key by key. */
#define PK_SERVICE_MAX (2 * 2 * 65536 + 2 * 256)

/* Flow bypass entries (LRU hash: the least recently used flow is evicted
 * when full, which only means its packets are inspected again). 65,536
 * flows x (40-byte key + 24-byte value + ~50 bytes of hash overhead) is
 * about 7.5 MB, preallocated. Suricata's xdp_filter.c uses 32,768 per CPU. */
#define PK_BYPASS_MAX 65536

/* Blocked flows: alerts are rare; 16,384 flows is far above a busy day. */
#define PK_BLOCK_MAX 16384

/* IPv6 extension headers walked looking for the transport header. Six
 * covers hop-by-hop, destination options, routing, fragment, AH and
 * destination options again, the order RFC 8200 section 4.1 recommends.
 * Linux takes longer chains (TCP behind 8 Destination Options headers is
 * read: tests/integration/live_cases.py, tcp_v6_many_dest_opts), so such a
 * packet is pushed whole for userland's decoder (PK_CNT_DEEP_HEADERS), never
 * passed over: else wrapping a segment in headers would hide it. */
#define PK_IPV6_EXT_MAX 6

/* Stacked 802.1Q/802.1ad tags parsed (QinQ). Linux strips any number of
 * priority (VLAN 0) tags (tests/integration/live_cases.py,
 * tcp_nine_priority_tags), and so does the Python decoder: a frame with
 * more tags is pushed whole for it (PK_CNT_DEEP_HEADERS). */
#define PK_VLAN_MAX 2

/* Coalescing of the server's header-only data segments (PK_CFG_COALESCE,
 * struct pk_pending). PK_PENDING_MAX flows hold a pending range at once
 * (hash without preallocation: entries are freed after an RCU grace period,
 * so userland's sweeper can delete one the program still points at); when
 * it is full a segment is pushed on its own. PK_COALESCE_HDR_MAX header
 * bytes are kept (a multiple of 8: copied in u64 words; Ethernet + 2 VLAN
 * tags + IPv4 with 40 bytes of options + TCP with 40 bytes of options is
 * 142); a segment with a longer header is pushed on its own. One record
 * stands for at most PK_COALESCE_BYTES_MAX payload bytes (its IP length
 * field must hold them). A range is grown only while its last segment is
 * younger than PK_COALESCE_HOLD_NS; userland's sweeper takes ranges older
 * than twice that (a flow gone quiet) out of the map. Frames the program
 * cannot tie to a flow (IP fragments: a later one has no ports; frames past
 * the header walk) stop all merging for PK_COALESCE_QUIET_NS (Linux keeps
 * an IPv6 fragment queue 60 s, ip6frag_time; IPv4 30 s), and userland
 * pushes every pending range before it reads such a frame: no client
 * segment reaches the stream stage before what the server had sent. */
#define PK_PENDING_MAX 16384
#define PK_COALESCE_HDR_MAX 192
#define PK_COALESCE_BYTES_MAX 61440
#define PK_COALESCE_HOLD_NS 250000000ULL
#define PK_COALESCE_QUIET_NS 60000000000ULL

/* ---- perf record ------------------------------------------------------- */

/* Where a record was taken (struct pk_event_meta.hook). */
enum pk_hook {
	PK_HOOK_XDP = 0,        /* XDP, ingress */
	PK_HOOK_TC_EGRESS = 1,  /* tc clsact egress (--direction both) */
};

/* struct pk_event_meta.flags: why the frame was pushed and how it was cut. */
#define PK_EVF_FORWARD   (1 << 0) /* client->server of a service (full) */
#define PK_EVF_REVERSE   (1 << 1) /* server->client of a TCP service */
#define PK_EVF_HDR_ONLY  (1 << 2) /* cut after the transport header */
#define PK_EVF_SNAPLEN   (1 << 3) /* cut at the configured snaplen */
#define PK_EVF_FRAGMENT  (1 << 4) /* an IP fragment (always pushed) */
#define PK_EVF_ANY_PORT  (1 << 5) /* the protocol's any-port flag matched */
#define PK_EVF_PROBE     (1 << 6) /* a scan probe (TCP without ACK, UDP) */
#define PK_EVF_COALESCED (1 << 7) /* server segments in a row, as one header-only
                                   * record: the last one's header, the first
                                   * one's sequence number, an IP length that
                                   * covers them all (struct pk_pending) */
#define PK_EVF_NO_FLOW   (1 << 8) /* no flow the program can tell: a TCP
                                   * fragment, or VLAN tags or IPv6 extension
                                   * headers past the walk (pushed whole) */

/*
 * The perf record: this struct, then cap_len bytes of the frame from its
 * first byte (Ethernet header). bpf_perf_event_output appends the frame
 * itself (the xdp-tutorial tracing04 trick: cap_len in the flags' upper
 * 32 bits), so the record is sizeof(meta) + cap_len + 0..7 padding bytes.
 * All fields host byte order.
 */
struct pk_event_meta {
	__u64 ts_ns;       /* bpf_ktime_get_ns(): CLOCK_MONOTONIC; userland adds
	                    * the wall-clock offset it measured at start */
	__u32 ifindex;     /* interface the frame was seen on */
	__u32 pkt_len;     /* length on the wire (what a pcap calls origlen) */
	__u32 cap_len;     /* frame bytes that follow this struct (<= pkt_len) */
	__u16 flags;       /* PK_EVF_* */
	__u8  hook;        /* enum pk_hook */
	__u8  abi_version; /* PK_ABI_VERSION of the program that wrote it */
};

/* ---- counters (per-CPU array pk_counters, __u64 each) ------------------ */

/*
 * Frames and bytes by the Pakemon paper's section 4.2 classes. IP counts
 * every IPv4/IPv6 frame; TCP, UDP and ICMP (ICMPv6 included) are subsets of
 * IP; OTHER is every frame that is none of the three (ARP, other IP
 * protocols, malformed frames), as pakemon/pipeline.py's Stats.other.
 * Append only.
 */
enum pk_counter {
	PK_CNT_FRAMES = 0,        /* every frame seen */
	PK_CNT_BYTES,             /* their wire bytes */
	PK_CNT_IP_FRAMES,
	PK_CNT_IP_BYTES,
	PK_CNT_TCP_FRAMES,
	PK_CNT_TCP_BYTES,
	PK_CNT_UDP_FRAMES,
	PK_CNT_UDP_BYTES,
	PK_CNT_ICMP_FRAMES,
	PK_CNT_ICMP_BYTES,
	PK_CNT_OTHER_FRAMES,
	PK_CNT_OTHER_BYTES,
	PK_CNT_CANDIDATES,        /* frames pushed to userland */
	PK_CNT_CANDIDATE_BYTES,   /* frame bytes pushed (sum of cap_len) */
	PK_CNT_HDR_ONLY,          /* candidates cut after the transport header */
	PK_CNT_FRAGMENTS,         /* IP fragments seen (all are candidates) */
	PK_CNT_PASSED_OVER,       /* frames no rule can match: not pushed */
	PK_CNT_BYPASSED,          /* frames of bypassed flows: skipped */
	PK_CNT_BYPASS_EXPIRED,    /* bypass entries found stale and deleted */
	PK_CNT_BLOCKED,           /* frames dropped by the block map */
	PK_CNT_PERF_FAIL,         /* bpf_perf_event_output failed (ring full) */
	PK_CNT_MALFORMED,         /* headers cut short or inconsistent: passed */
	PK_CNT_DEEP_HEADERS,      /* VLAN tags or IPv6 ext. headers past the walk: pushed whole */
	PK_CNT_COALESCED,         /* server segments taken into a pending range (not
	                           * pushed on their own; included in HDR_ONLY) */
	PK_CNT_COALESCE_RECORDS,  /* pending ranges the program pushed (COALESCED
	                           * records; the ones userland swept are its own count) */
	PK_CNT_COALESCE_FULL,     /* segments pushed on their own: pk_pending was full */
	PK_CNT__MAX,
};

/* ---- configuration (array pk_config, one entry at index 0) ------------- */

/* struct pk_config.any_ports: push every frame of the protocol, whatever
 * its ports (rules with `*` on both sides; `ip` rules set all four). */
#define PK_ANY_TCP   (1 << 0)
#define PK_ANY_UDP   (1 << 1)
#define PK_ANY_ICMP  (1 << 2) /* ICMP and ICMPv6 */
#define PK_ANY_OTHER (1 << 3) /* IP protocols other than the three */

/* struct pk_config.flags */
#define PK_CFG_BLOCK     (1 << 0) /* enforce pk_block: XDP_DROP its flows */
#define PK_CFG_SCAN_TCP  (1 << 1) /* push headers of TCP without ACK, any port */
#define PK_CFG_SCAN_UDP  (1 << 2) /* push headers of UDP, any port */
#define PK_CFG_COALESCE  (1 << 3) /* merge the server's header-only data
                                   * segments in a row (struct pk_pending) */

/* All fields host byte order. A zeroed entry (before userland writes it)
 * pushes nothing and drops nothing. */
struct pk_config {
	__u32 abi_version;        /* PK_ABI_VERSION as userland knows it */
	__u32 snaplen;            /* frame bytes per record; 0 = PK_SNAPLEN_MAX */
	__u32 any_ports;          /* PK_ANY_* */
	__u32 flags;              /* PK_CFG_* */
	__u64 bypass_timeout_ns;  /* a bypass entry unused this long expires;
	                           * 0 = only LRU eviction removes it */
};

/* ---- service map (hash pk_services) ------------------------------------ */

/* struct pk_service_key.dir */
enum pk_dir {
	/* port is the rule's DST: frames TO it are client->server data (full);
	 * frames FROM it are the server's side (TCP: headers only). ICMP keys
	 * use this direction with the type as port. */
	PK_DIR_DST = 0,
	/* port is the rule's SRC and its DST is `*` (a backdoor answering from
	 * its port): frames FROM it are the data (full); frames TO it are the
	 * other side (TCP: headers only). */
	PK_DIR_SRC = 1,
};

struct pk_service_key {
	__u8  proto;   /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6 */
	__u8  dir;     /* enum pk_dir */
	__be16 port;   /* network order; ICMP: the type, htons(type) */
};

struct pk_service_val {
	__u32 nodes;   /* service nodes of the rule tree behind the key (info) */
};

/* ---- flows: bypass (LRU hash pk_bypass) and block (LRU hash pk_block) --- */

/* A directional 5-tuple. IPv4 addresses sit in word 0 of the arrays and the
 * other words are zero; ICMP and other protocols have zero ports. Userland
 * inserts both directions of a flow. Every byte is significant to the hash,
 * so the padding is explicit and zero. */
struct pk_flow_key {
	__u8   family;   /* 4 or 6 */
	__u8   proto;    /* IP protocol number */
	__be16 sport;    /* network order */
	__be16 dport;    /* network order */
	__u16  _pad;     /* zero */
	__be32 saddr[4]; /* network order */
	__be32 daddr[4]; /* network order */
};

/* Written by userland when it bypasses a flow, updated by the kernel on
 * every skipped packet. Host byte order. */
struct pk_flow_val {
	__u64 last_seen_ns; /* bpf_ktime_get_ns() of the last packet */
	__u64 packets;      /* packets skipped */
	__u64 bytes;        /* wire bytes skipped */
};

/* Host byte order. */
struct pk_block_val {
	__u64 since_ns;     /* monotonic time userland marked the flow */
	__u64 packets;      /* packets dropped */
	__u64 bytes;        /* wire bytes dropped */
};

/* ---- coalescing (hash pk_pending, key struct pk_flow_key) -------------- */

/*
 * The server's side of a TCP service goes out header-only: userland keeps
 * its sequence numbers, ACK, window and flags, never its bytes. In a
 * response, segment after segment differs only in sequence number (and
 * timestamp), and nothing reads them until the client speaks again. So a
 * segment with only ACK (and PSH) set, following on from the flow's
 * pending range with the same ACK, is merged into it instead of pushed (a
 * pure ACK too: the server acknowledging a request starts the range its
 * answer joins);
 * the range goes out as one record (PK_EVF_COALESCED) before any other
 * packet of the flow, either direction, is pushed: the receiver then knows
 * everything the server sent, and its latest ACK and window, before the
 * client's next word, which is all its window and ACK checks need. Userland's sweeper pushes ranges of flows that went
 * quiet. The record is the last segment's header with the first one's
 * sequence number and an IP length covering every merged byte (IPv4
 * header checksum recomputed), so a header-only record of one big segment.
 *
 * Key: the server->client direction (saddr = the server). Value, host byte
 * order unless said: guarded by lock among the program's CPUs. Userland
 * takes entries out with bpf_map_lookup_and_delete_elem (mostly ones the
 * program no longer grows: older than twice PK_COALESCE_HOLD_NS, or merged
 * before a no-flow frame); a merge that lands in an entry taken meanwhile
 * is seen by the program (the entry is gone from the map), which then
 * pushes the segment on its own too.
 */
struct pk_pending {
	struct bpf_spin_lock lock;
	__u32 frames;      /* segments merged; 0: empty (flushed) */
	__u64 ts_ns;       /* CLOCK_MONOTONIC of the last merge (or flush) */
	__u32 seq_first;   /* sequence number of the first merged byte */
	__u32 seq_next;    /* sequence number after the last merged byte */
	__u32 ack;         /* the merged segments' ACK number */
	__u32 bytes;       /* payload bytes merged */
	__u32 last_plen;   /* payload bytes of the last one (its IP length's) */
	__u32 ifindex;
	__u16 hdr_len;     /* bytes of hdr: the last segment, to the TCP payload */
	__u16 l3_off;      /* IP header offset in hdr */
	__u16 l4_off;      /* TCP header offset in hdr */
	__u8  family;      /* 4 or 6 */
	__u8  hook;        /* enum pk_hook */
	__u8  hdr[PK_COALESCE_HDR_MAX]; /* wire bytes */
};

#endif /* PAKEMON_ABI_H */
