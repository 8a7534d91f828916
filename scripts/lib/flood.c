/* flood.c: the fastest flood one core can send at a hapair heartbeat port (or at a VRRP
 * node), for scripts/bench-flood and tests/daemon/daemon_flood.rs. Build: gcc -O2 -o flood flood.c
 *
 * Usage: flood TARGET_ADDR PORT SECONDS KINDS [CAPTURE_SECONDS SENDER LINK]
 *        flood TARGET_ADDR vrrp SECONDS KINDS IFACE TARGET_MAC CAPTURE_SECONDS
 *
 * Sends UDP datagrams to TARGET_ADDR:PORT (IPv4) for SECONDS, as fast as sendmmsg(2) takes
 * them, in batches of 64 that cycle through KINDS, any of the letters:
 *   g  garbage: random bytes of a random length, 1 to 1400
 *   f  forgeries of a frame's length: 87 random bytes (a version 2 frame's length)
 *   s  frame-shaped forgeries: 87 bytes whose first four are a v2 frame's (version 2, body
 *      length 55, SENDER, LINK), the rest random: what no stateless filter can tell from a
 *      frame, so the daemon reads and authenticates each one
 *   r  replays: the real frames heard on PORT (any address) during the CAPTURE_SECONDS
 *      before the flood, sent again as they were, over and over
 * With r, CAPTURE_SECONDS SENDER LINK are required: only captured datagrams whose sender
 * and link bytes are SENDER and LINK (the frames the target hears from its peer) are kept.
 *
 * With vrrp instead of a port, the same kinds go to TARGET_ADDR's VRRP socket: IP protocol
 * 112 to the group 224.0.0.18 with TTL 255, as VRRP requires (a VRRP daemon listens on the
 * group only), in Ethernet frames sent on IFACE to TARGET_MAC alone (a packet socket), so
 * that only the target is flooded. A frame's length is then a VRRPv3 advertisement's with one
 * IPv4 address (12 bytes), "frame-shaped" is version 3, type 1, VRID 51, priority 150, one
 * address and a random checksum, and r replays the advertisements heard on IFACE (the group
 * joined there) during CAPTURE_SECONDS (0 without r).
 *
 * At the end it prints one line: "sent N garbage G forged F shaped S replayed R captured C
 * seconds T". It sends nothing but to TARGET_ADDR, from the namespace it runs in, and
 * refuses a TARGET_ADDR outside the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24), so that a slip cannot flood a real network. Exit 1 on a setup error
 * (naming it), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define DATAGRAM_MAX 1400
#define FRAME_LEN 87
#define CAPTURED_MAX 64
#define IPPROTO_VRRP 112
#define ADVERT_LEN 12
#define HEADERS_LEN (14 + 20)

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill_random(unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = next_random();
		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

static unsigned char captured[CAPTURED_MAX][FRAME_LEN + 41];
static size_t captured_len[CAPTURED_MAX];
static int captured_n;

/* Listens on PORT for `seconds` and keeps up to CAPTURED_MAX frames of SENDER on LINK. */
static void capture(int port, double seconds, int sender, int link)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		die("capture socket");
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(port)};
	if (bind(s, (struct sockaddr *)&any, sizeof any) < 0)
		die("capture bind");
	double end = now_s() + seconds;
	while (captured_n < CAPTURED_MAX) {
		double left = end - now_s();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		unsigned char buf[DATAGRAM_MAX];
		ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
		if (n < 4 || n > (ssize_t)sizeof captured[0] || buf[2] != sender || buf[3] != link)
			continue;
		memcpy(captured[captured_n], buf, n);
		captured_len[captured_n++] = n;
	}
	close(s);
}

/* Listens for VRRP advertisements on IFACE for `seconds` and keeps up to CAPTURED_MAX. */
static void capture_vrrp(const char *iface, double seconds)
{
	int s = socket(AF_INET, SOCK_RAW, IPPROTO_VRRP);
	if (s < 0)
		die("capture raw socket");
	struct ip_mreqn group = {.imr_ifindex = (int)if_nametoindex(iface)};
	inet_pton(AF_INET, "224.0.0.18", &group.imr_multiaddr);
	if (setsockopt(s, IPPROTO_IP, IP_ADD_MEMBERSHIP, &group, sizeof group) < 0)
		die("join 224.0.0.18");
	double end = now_s() + seconds;
	while (captured_n < CAPTURED_MAX) {
		double left = end - now_s();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		unsigned char buf[DATAGRAM_MAX];
		ssize_t n = recv(s, buf, sizeof buf, MSG_DONTWAIT);
		/* A raw socket hands over the IP header too. */
		if (n < 20 || n - (buf[0] & 0x0f) * 4 < 8)
			continue;
		size_t header = (buf[0] & 0x0f) * 4, len = n - header;
		if (len > sizeof captured[0])
			continue;
		memcpy(captured[captured_n], buf + header, len);
		captured_len[captured_n++] = len;
	}
	close(s);
}

/* Sets `ll` to send on IFACE to MAC, and `eth_ip` to the Ethernet header (MAC, IFACE's own
 * address, IPv4) and an IPv4 header from IFACE's address to 224.0.0.18, protocol 112, TTL
 * 255; ip_header() fills in the length and checksum per packet. */
static void vrrp_link(int s, const char *iface, const char *mac, struct sockaddr_ll *ll,
		      unsigned char *eth_ip)
{
	unsigned m[6];
	if (sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
		fprintf(stderr, "flood: bad MAC %s\n", mac);
		exit(2);
	}
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", iface);
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		die(iface);
	ll->sll_ifindex = ifr.ifr_ifindex;
	ll->sll_protocol = htons(ETH_P_IP);
	for (int i = 0; i < 6; i++)
		ll->sll_addr[i] = eth_ip[i] = m[i];
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
		die("SIOCGIFHWADDR");
	memcpy(eth_ip + 6, ifr.ifr_hwaddr.sa_data, 6);
	eth_ip[12] = 0x08;
	eth_ip[13] = 0x00;
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	ifr.ifr_addr.sa_family = AF_INET;
	if (u < 0 || ioctl(u, SIOCGIFADDR, &ifr) < 0)
		die("SIOCGIFADDR");
	close(u);
	unsigned char *ip = eth_ip + 14;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[8] = 255;
	ip[9] = IPPROTO_VRRP;
	memcpy(ip + 12, &((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr, 4);
	inet_pton(AF_INET, "224.0.0.18", ip + 16);
}

/* The total length and header checksum of an IPv4 header carrying `payload` bytes. */
static void ip_header(unsigned char *ip, size_t payload)
{
	uint16_t total = 20 + payload;
	ip[2] = total >> 8;
	ip[3] = total & 0xff;
	ip[10] = ip[11] = 0;
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = ~sum >> 8;
	ip[11] = ~sum & 0xff;
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 8) {
		fprintf(stderr, "usage: flood TARGET_ADDR PORT SECONDS KINDS "
				"[CAPTURE_SECONDS SENDER LINK]\n");
		return 2;
	}
	int vrrp = strcmp(argv[2], "vrrp") == 0;
	if (vrrp && argc != 8) {
		fprintf(stderr, "usage: flood TARGET_ADDR vrrp SECONDS KINDS IFACE TARGET_MAC "
				"CAPTURE_SECONDS\n");
		return 2;
	}
	struct sockaddr_in to = {.sin_family = AF_INET};
	if (!vrrp)
		to.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
		fprintf(stderr, "flood: bad address %s\n", argv[1]);
		return 2;
	}
	uint32_t net = ntohl(to.sin_addr.s_addr) & 0xffffff00u;
	if (net != 0xc0000200u && net != 0xc6336400u && net != 0xcb007100u) {
		fprintf(stderr, "flood: %s is outside 192.0.2.0/24, 198.51.100.0/24 and "
				"203.0.113.0/24: refused\n", argv[1]);
		return 2;
	}
	double seconds = atof(argv[3]);
	const char *kinds = argv[4];
	if (!*kinds || strspn(kinds, "gfsr") != strlen(kinds)) {
		fprintf(stderr, "flood: KINDS is letters of g f s r\n");
		return 2;
	}
	int sender = 0, link = 0;
	size_t frame_len = vrrp ? ADVERT_LEN : FRAME_LEN;
	int replays = strchr(kinds, 'r') != NULL;
	if (vrrp) {
		if (replays)
			capture_vrrp(argv[5], atof(argv[7]));
	} else {
		if (replays && argc != 8) {
			fprintf(stderr, "flood: r needs CAPTURE_SECONDS SENDER LINK\n");
			return 2;
		}
		if (argc == 8) {
			sender = atoi(argv[6]);
			link = atoi(argv[7]);
		}
		if (replays)
			capture(atoi(argv[2]), atof(argv[5]), sender, link);
	}
	if (replays && captured_n == 0) {
		fprintf(stderr, "flood: nothing to replay was heard\n");
		return 1;
	}
	rng ^= (uint64_t)now_s() * 1000003u;
	int s = vrrp ? socket(AF_PACKET, SOCK_RAW, 0) : socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		die("socket");
	struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_halen = 6};
	static unsigned char headers[BATCH][HEADERS_LEN];
	if (vrrp)
		vrrp_link(s, argv[5], argv[6], &ll, headers[0]);
	static unsigned char bufs[BATCH][DATAGRAM_MAX];
	struct iovec iovs[BATCH][2];
	struct mmsghdr msgs[BATCH];
	memset(msgs, 0, sizeof msgs);
	unsigned long long sent = 0, by_kind[4] = {0};
	const char *order = "gfsr";
	size_t kind_i = 0, replay_i = 0;
	double end = now_s() + seconds;
	while (now_s() < end) {
		char kind = kinds[kind_i++ % strlen(kinds)];
		for (int i = 0; i < BATCH; i++) {
			size_t len = frame_len;
			switch (kind) {
			case 'g':
				len = 1 + next_random() % DATAGRAM_MAX;
				fill_random(bufs[i], len);
				break;
			case 'f':
				fill_random(bufs[i], len);
				break;
			case 's':
				fill_random(bufs[i], len);
				if (vrrp) {
					/* v3 advertisement, VRID 51, priority 150, one address */
					memcpy(bufs[i], "\x31\x33\x96\x01\x00\x01", 6);
					break;
				}
				bufs[i][0] = 2;
				bufs[i][1] = FRAME_LEN - 32;
				bufs[i][2] = sender;
				bufs[i][3] = link;
				break;
			case 'r':
				len = captured_len[replay_i % captured_n];
				memcpy(bufs[i], captured[replay_i++ % captured_n], len);
				break;
			}
			struct iovec *iov = iovs[i];
			iov[0].iov_base = bufs[i];
			iov[0].iov_len = len;
			msgs[i].msg_hdr.msg_name = &to;
			msgs[i].msg_hdr.msg_namelen = sizeof to;
			msgs[i].msg_hdr.msg_iovlen = 1;
			if (vrrp) {
				memcpy(headers[i], headers[0], HEADERS_LEN);
				ip_header(headers[i] + 14, len);
				iov[1] = iov[0];
				iov[0].iov_base = headers[i];
				iov[0].iov_len = HEADERS_LEN;
				msgs[i].msg_hdr.msg_name = &ll;
				msgs[i].msg_hdr.msg_namelen = sizeof ll;
				msgs[i].msg_hdr.msg_iovlen = 2;
			}
			msgs[i].msg_hdr.msg_iov = iov;
		}
		int n = sendmmsg(s, msgs, BATCH, 0);
		if (n > 0) {
			sent += n;
			by_kind[strchr(order, kind) - order] += n;
		}
	}
	printf("sent %llu garbage %llu forged %llu shaped %llu replayed %llu captured %d "
	       "seconds %.1f\n",
	       sent, by_kind[0], by_kind[1], by_kind[2], by_kind[3], captured_n, seconds);
	return 0;
}
