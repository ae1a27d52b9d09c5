/*
 * failover.c: who takes over a lost owner's volumes, which service addresses
 * an engine holds, and the two system calls of an address takeover: adding or
 * removing an address on an interface (rtnetlink) and announcing it with a
 * gratuitous ARP (an AF_PACKET socket).
 *
 * The decisions are pure functions of the map and the membership, so every
 * member computes the same plan and only the chosen new owner submits it (a
 * replicated OWNER_MOVE); the timing (2 x fence_ms after the membership
 * change) and the calls belong to the engine (engine/failover.c).
 */
#define UTIL_LOG_TAG "failover"
#include <arpa/inet.h>
#include <errno.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/cluster_internal.h"
#include "util/util.h"

/* ---- views ---- */

const char *clu_volume_portal(const struct clu *c, const struct clu_volume *v)
{
	return v->service_portal[0] ? v->service_portal : clu_peer_portal(c, v->owner);
}

unsigned clu_members(const struct clu *c, uint32_t *out, unsigned max)
{
	unsigned n = UTIL_MIN(max, c->nmembers);

	memcpy(out, c->members, n * sizeof(*out));
	return n;
}

bool clu_fenced(const struct clu *c)
{
	/*
	 * The configuration's own size counts too: it arrives through CPG at
	 * the same moment the majority sees its own, while votequorum's
	 * notification may come later; the majority's 2 x fence_ms wait
	 * starts from that same moment.
	 */
	return !clu_serving(c) || !clu_config_quorate(c);
}

int clu_portal_host(const char *portal, char *out, size_t len)
{
	const char *end;

	if (!portal || !portal[0])
		return -EINVAL;
	if (portal[0] == '[') {
		end = strchr(portal, ']');
		if (!end)
			return -EINVAL;
		portal++;
	} else {
		end = strrchr(portal, ':');
		if (end && strchr(portal, ':') != end)
			end = NULL; /* a bare IPv6 literal */
		if (!end)
			end = portal + strlen(portal);
	}
	if ((size_t)(end - portal) >= len)
		return -ENAMETOOLONG;
	memcpy(out, portal, (size_t)(end - portal));
	out[end - portal] = '\0';
	return 0;
}

/* ---- decisions (pure) ---- */

static bool in(const uint32_t *set, unsigned n, uint32_t x)
{
	for (unsigned i = 0; i < n; i++)
		if (set[i] == x)
			return true;
	return false;
}

/* Least loaded member other than \p not (fewest owned bytes, then lowest id); 0: none. */
static uint32_t least_loaded(const struct clu_map *m, const uint32_t *members, unsigned n,
			     uint32_t not )
{
	uint32_t best = 0;
	uint64_t bb = UINT64_MAX;

	for (unsigned i = 0; i < n; i++) {
		uint64_t bytes;
		if (members[i] == not )
			continue;
		clu_map_owned(m, members[i], &bytes);
		if (bytes < bb || (bytes == bb && members[i] < best)) {
			best = members[i];
			bb = bytes;
		}
	}
	return best;
}

unsigned clu_failover_plan(const struct clu_map *m, const uint32_t *members, unsigned n,
			   struct clu_takeover *out, unsigned max)
{
	unsigned k = 0;

	if (n == 0)
		return 0;
	for (unsigned i = 0; i < m->nvols && k < max; i++) {
		const struct clu_volume *v = &m->vols[i];
		if (in(members, n, v->owner))
			continue;
		/* The partner takes over (it holds the volume's mirrored state). */
		uint32_t owner = v->partner && in(members, n, v->partner)
				     ? v->partner
				     : least_loaded(m, members, n, 0);
		struct clu_takeover *t = &out[k++];
		snprintf(t->name, sizeof(t->name), "%s", v->name);
		t->old_owner = v->owner;
		t->owner = owner;
		t->partner = least_loaded(m, members, n, owner);
		t->pool_file = v->nlegs == 0;
	}
	return k;
}

unsigned clu_addr_wanted(const struct clu_map *m, uint32_t self, const char *self_portal,
			 const char *(*portal_of)(void *arg, const struct clu_volume *v), void *arg,
			 char (*out)[CLU_PORTAL_MAX], unsigned max)
{
	unsigned k = 0;
	bool own_taken = false;
	char mine[CLU_PORTAL_MAX] = "";

	if (self_portal)
		(void)clu_portal_host(self_portal, mine, sizeof(mine));
	for (unsigned i = 0; i < m->nvols; i++) {
		const struct clu_volume *v = &m->vols[i];
		char host[CLU_PORTAL_MAX];
		if (clu_portal_host(portal_of(arg, v), host, sizeof(host)) < 0)
			continue;
		if (v->owner != self) {
			/* Another engine (alive or not) serves hosts at our address. */
			own_taken |= mine[0] && strcmp(host, mine) == 0;
			continue;
		}
		bool dup = false;
		for (unsigned j = 0; j < k; j++)
			dup |= strcmp(out[j], host) == 0;
		if (!dup && k < max)
			snprintf(out[k++], CLU_PORTAL_MAX, "%s", host);
	}
	/*
	 * Our own address while nobody else uses it: after a failover the
	 * taker keeps it and the returning engine stays a partner until
	 * `vmctl volume move` gives the volume (and so the address) back.
	 */
	if (mine[0] && !own_taken) {
		bool dup = false;
		for (unsigned j = 0; j < k; j++)
			dup |= strcmp(out[j], mine) == 0;
		if (!dup && k < max)
			snprintf(out[k++], CLU_PORTAL_MAX, "%s", mine);
	}
	return k;
}

/* ---- addresses: rtnetlink ---- */

struct nlreq {
	struct nlmsghdr nh;
	struct ifaddrmsg ifa;
	char attrs[64];
};

static void add_attr(struct nlreq *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *rta = (void *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

static int addr_change(const char *dev, const char *addr, bool add)
{
	struct nlreq req;
	unsigned char a[16];
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	unsigned ifindex = if_nametoindex(dev);
	int fd, rc;

	if (!ifindex)
		return -ENODEV;
	if (inet_pton(family, addr, a) != 1)
		return -EINVAL;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa));
	req.nh.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	req.nh.nlmsg_seq = 1;
	req.ifa.ifa_family = (unsigned char)family;
	/* A host route only: the interface's own subnet route already covers the peers. */
	req.ifa.ifa_prefixlen = family == AF_INET ? 32 : 128;
	req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	req.ifa.ifa_index = ifindex;
	/* IPv6: no duplicate address detection delay, the address must work at once. */
	if (family == AF_INET6)
		req.ifa.ifa_flags = IFA_F_NODAD;
	add_attr(&req, IFA_LOCAL, a, family == AF_INET ? 4 : 16);
	add_attr(&req, IFA_ADDRESS, a, family == AF_INET ? 4 : 16);

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	struct nlmsghdr *nh = (void *)buf;
	rc = -EPROTO;
	if (NLMSG_OK(nh, (size_t)n) && nh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(nh);
		rc = e->error; /* 0 or -errno */
	}
out:
	close(fd);
	return rc;
}

int clu_addr_add(const char *dev, const char *addr)
{
	int rc = addr_change(dev, addr, true);
	return rc == -EEXIST ? 0 : rc;
}

int clu_addr_del(const char *dev, const char *addr)
{
	int rc = addr_change(dev, addr, false);
	return rc == -EADDRNOTAVAIL || rc == -ENOENT ? 0 : rc;
}

/* ---- gratuitous ARP ---- */

struct arp_pkt {
	struct arphdr h;
	uint8_t sha[ETH_ALEN];
	uint8_t spa[4];
	uint8_t tha[ETH_ALEN];
	uint8_t tpa[4];
} __attribute__((packed));

int clu_garp(const char *dev, const char *addr)
{
	struct arp_pkt p;
	struct ifreq ifr;
	struct in_addr ip;
	unsigned ifindex = if_nametoindex(dev);
	int fd, rc = 0;

	if (strchr(addr, ':'))
		return 0; /* IPv6 has unsolicited neighbour advertisements: not done here */
	if (!ifindex)
		return -ENODEV;
	if (inet_pton(AF_INET, addr, &ip) != 1)
		return -EINVAL;
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		rc = -errno;
		goto out;
	}
	/*
	 * An ARP announcement (RFC 5227 2.3): a request whose sender and
	 * target addresses are both the taken-over address, broadcast, so
	 * that every host on the segment replaces its cached entry.
	 */
	memset(&p, 0, sizeof(p));
	p.h.ar_hrd = htons(ARPHRD_ETHER);
	p.h.ar_pro = htons(ETH_P_IP);
	p.h.ar_hln = ETH_ALEN;
	p.h.ar_pln = 4;
	p.h.ar_op = htons(ARPOP_REQUEST);
	memcpy(p.sha, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	memcpy(p.spa, &ip, 4);
	memcpy(p.tpa, &ip, 4);
	struct sockaddr_ll sll = {.sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = (int)ifindex,
				  .sll_halen = ETH_ALEN};
	memset(sll.sll_addr, 0xff, ETH_ALEN);
	if (sendto(fd, &p, sizeof(p), 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}
